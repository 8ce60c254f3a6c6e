"""Target Regions from Body Part Examined (MADO Rev 1.1 §6.X.2.9 Table 6.X.2.9-1, §6.X.6.4).

The study-level Target Region of a KOS manifest is R+ (1-n) and draws on CID IHE-MADO1
"High-Level Anatomic Regions and Systems" (Table 6.X.6.4-1), whose ten codes correspond to ten
DICOM Body Part Examined terms (:data:`mado.vocab.HIGH_LEVEL_REGIONS`). Instances carry many
other terms (PS3.16 Annex L): each one that lies within high-level regions maps to them here
(``HEAD`` → Head and neck; ``CHESTABDOMEN`` → Upper trunk and Lower trunk). The value set is
*extensible*: when no instance's body part maps — absent, free text, a term spanning no one
region — the region is (87100004, SCT, "Topography unknown"), so a created manifest always
carries the item its own validator requires, and says honestly that the region is not known.
"""

from __future__ import annotations

from collections.abc import Iterable

from mado.model import Code
from mado.vocab import HIGH_LEVEL_REGIONS

__all__ = ["UNKNOWN_REGION", "regions_of", "study_regions"]

UNKNOWN_REGION = Code(value="87100004", scheme="SCT", meaning="Topography unknown")

# High-level region (its Body Part Examined term) -> the PS3.16 Annex L terms within it.
_WITHIN: dict[str, tuple[str, ...]] = {
    "HEADNECK": (
        "HEAD", "SKULL", "BRAIN", "CEREBELLUM", "CIRCLEOFWILLIS", "FACE", "CHEEK", "EAR",
        "IAC", "EYE", "EYELID", "CORNEA", "SCLERA", "ORBIT", "NOSE", "MOUTH", "TONGUE", "JAW",
        "MAXILLA", "ZYGOMA", "TMJ", "PAROTID", "SUBMANDIBULAR", "NECK", "PHARYNX", "LARYNX",
        "THYROID",
    ),
    "UPPERTRUNK": (
        "CHEST", "LUNG", "BRONCHUS", "TRACHEA", "MEDIASTINUM", "THYMUS", "ESOPHAGUS", "RIB",
        "STERNUM", "CLAVICLE", "SCAPULA", "AXILLA",
    ),
    "LOWERTRUNK": (
        "ABDOMEN", "PELVIS", "ABDOMENPELVIS", "LIVER", "GALLBLADDER", "PANCREAS", "SPLEEN",
        "STOMACH", "DUODENUM", "JEJUNUM", "ILEUM", "COLON", "RECTUM", "KIDNEY", "ADRENAL",
        "URETER", "BLADDER", "URETHRA", "PROSTATE", "TESTIS", "SCROTUM", "PENIS", "UTERUS",
        "CERVIX", "OVARY", "VAGINA", "VULVA", "ILIUM", "BUTTOCK",
    ),
    "SPINE": ("CSPINE", "TSPINE", "LSPINE", "SSPINE", "CTSPINE", "TLSPINE", "LSSPINE", "COCCYX"),
    "UPPERLIMB": (
        "SHOULDER", "ARM", "HUMERUS", "ELBOW", "FOREARM", "RADIUS", "ULNA", "RADIUSULNA",
        "WRIST", "HAND", "FINGER", "THUMB",
    ),
    "LOWERLIMB": (
        "HIP", "THIGH", "FEMUR", "KNEE", "PATELLA", "LEG", "CALF", "TIBIA", "TIBIAFIBULA",
        "ANKLE", "FOOT", "CALCANEUS", "TOE",
    ),
    "HEART": ("CORONARYARTERY",),
    "CARDIOVASCSYS": ("AORTA", "CAROTID"),
}  # fmt: skip
_SPANNING = {
    "CHESTABDOMEN": ("UPPERTRUNK", "LOWERTRUNK"),
    "CHESTABDPELVIS": ("UPPERTRUNK", "LOWERTRUNK"),
    "NECKCHEST": ("HEADNECK", "UPPERTRUNK"),
    "NECKCHESTABDOMEN": ("HEADNECK", "UPPERTRUNK", "LOWERTRUNK"),
    "NECKCHESTABDPELV": ("HEADNECK", "UPPERTRUNK", "LOWERTRUNK"),
}
_TERMS: dict[str, tuple[Code, ...]] = {
    **{term: (code,) for term, code in HIGH_LEVEL_REGIONS.items()},
    **{
        term: (HIGH_LEVEL_REGIONS[region],)
        for region, terms in _WITHIN.items()
        for term in terms
    },
    **{
        term: tuple(HIGH_LEVEL_REGIONS[r] for r in regions)
        for term, regions in _SPANNING.items()
    },
}


def regions_of(body_part: object) -> tuple[Code, ...]:
    """The CID IHE-MADO1 regions a Body Part Examined value lies in; ``()`` when unknown."""
    if not isinstance(body_part, str):
        return ()
    return _TERMS.get(body_part.strip().upper(), ())


def study_regions(regions: Iterable[Code]) -> tuple[Code, ...]:
    """The study's Target Regions: each distinct region once, or :data:`UNKNOWN_REGION`."""
    distinct = tuple(dict.fromkeys(regions))
    return distinct or (UNKNOWN_REGION,)
