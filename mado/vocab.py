"""Fixed identifiers of the MADO manifest formats: SOP classes, codes, FHIR URLs.

Sources: MADO Rev 1.1 §6.X.2.2 (format codes), §6.X.2.9 (TID 1600/1602/16XX concept codes and
the temporary ``99IHE`` codes until DICOM CP-2595), §6.X.2.13 (the temporary private Display
URI tag); MADO Rev 0.6 draft Table 7.3.3.5.2-1 (key-image extension: Related Series Sequence,
Purpose of Reference 113000) and Table 7.3.3.6.2-1 (document title 113030 "Manifest");
MADO FHIR IG profiles MadoWadoEndpoint, MadoRetrieveLocationUIDExtension,
MadoNumberOfFrames and MadoKeyObjectDocumentTitle.
"""

from __future__ import annotations

from mado.model import Code

__all__ = [
    "CODE_DOCUMENT_TITLE",
    "CODE_IMAGE_LIBRARY",
    "CODE_IMAGE_LIBRARY_GROUP",
    "CODE_INSTANCE_NUMBER",
    "CODE_KEY_OBJECT_DESCRIPTION",
    "CODE_MODALITY",
    "CODE_NUMBER_OF_FRAMES",
    "CODE_SERIES_DATE",
    "CODE_SERIES_DESCRIPTION",
    "CODE_SERIES_INSTANCE_UID",
    "CODE_SERIES_NUMBER",
    "CODE_SERIES_RELATED_INSTANCES",
    "CODE_SERIES_TIME",
    "CODE_STUDY_RELATED_SERIES",
    "CODE_TARGET_REGION",
    "DISPLAY_URI_ELEMENT",
    "DISPLAY_URI_GROUP",
    "DISPLAY_URI_PRIVATE_CREATOR",
    "EXT_DATA_ABSENT_REASON",
    "EXT_KEY_IMAGE_DESCRIPTION",
    "EXT_KEY_IMAGE_FLAG",
    "EXT_KO_DOCUMENT_TITLE",
    "EXT_NUMBER_OF_FRAMES",
    "EXT_RETRIEVE_LOCATION_UID",
    "FHIR_DICOM_UID_SYSTEM",
    "FHIR_DCM_SYSTEM",
    "FHIR_SOP_CLASS_SYSTEM",
    "HIGH_LEVEL_REGIONS",
    "KOS_SOP_CLASS_UID",
    "MANIFEST_TITLES",
    "OF_INTEREST",
    "PLACEHOLDER_ADDRESSES",
    "TITLE_MANIFEST",
    "TITLE_MANIFEST_WITH_DESCRIPTION",
    "URN_DICOM_UID",
]

KOS_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.88.59"

# Document titles: 113030 is the DICOM code the Rev 0.6 draft fixes; Rev 1.1 (§6.X.2.9) uses the
# temporary MADOTEMP001 until CP-2595 is final, and the IHE sample manifest carries that one.
TITLE_MANIFEST = Code(value="113030", scheme="DCM", meaning="Manifest")
TITLE_MANIFEST_WITH_DESCRIPTION = Code(
    value="MADOTEMP001", scheme="99IHE", meaning="Manifest with Description"
)
MANIFEST_TITLES = (TITLE_MANIFEST, TITLE_MANIFEST_WITH_DESCRIPTION)

# CID 7010 "Of Interest": a key-image flag's default purpose (Rev 0.6 Table 7.3.3.5.2-1).
OF_INTEREST = Code(value="113000", scheme="DCM", meaning="Of Interest")

CODE_IMAGE_LIBRARY = Code(value="111028", scheme="DCM", meaning="Image Library")
CODE_IMAGE_LIBRARY_GROUP = Code(value="126200", scheme="DCM", meaning="Image Library Group")
CODE_MODALITY = Code(value="121139", scheme="DCM", meaning="Modality")
CODE_TARGET_REGION = Code(value="123014", scheme="DCM", meaning="Target Region")
CODE_STUDY_RELATED_SERIES = Code(
    value="MADOTEMP009", scheme="99IHE", meaning="Number of Study Related Series"
)
CODE_SERIES_DATE = Code(value="MADOTEMP003", scheme="99IHE", meaning="Series Date")
CODE_SERIES_TIME = Code(value="MADOTEMP004", scheme="99IHE", meaning="Series Time")
CODE_SERIES_DESCRIPTION = Code(value="MADOTEMP002", scheme="99IHE", meaning="Series Description")
CODE_SERIES_NUMBER = Code(value="113607", scheme="DCM", meaning="Series Number")
CODE_SERIES_INSTANCE_UID = Code(value="112002", scheme="DCM", meaning="Series Instance UID")
CODE_SERIES_RELATED_INSTANCES = Code(
    value="MADOTEMP007", scheme="99IHE", meaning="Number of Series Related Instances"
)
CODE_INSTANCE_NUMBER = Code(value="113609", scheme="DCM", meaning="Instance Number")
CODE_NUMBER_OF_FRAMES = Code(value="121140", scheme="DCM", meaning="Number of Frames")
CODE_DOCUMENT_TITLE = Code(value="121144", scheme="DCM", meaning="Document Title")
CODE_KEY_OBJECT_DESCRIPTION = Code(value="113012", scheme="DCM", meaning="Key Object Description")

# Study-level Display URI: a temporary private element until CP-2595 assigns a public tag.
DISPLAY_URI_PRIVATE_CREATOR = "IHE_MADO_PRIVATE"
DISPLAY_URI_GROUP = 0x000D
DISPLAY_URI_ELEMENT = 0x01

URN_DICOM_UID = "urn:dicom:uid"
FHIR_DICOM_UID_SYSTEM = URN_DICOM_UID
FHIR_DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
FHIR_SOP_CLASS_SYSTEM = "http://dicom.nema.org/resources/CodeSystem/DICOM_UIDs"

_MADO_SD = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/"
EXT_RETRIEVE_LOCATION_UID = _MADO_SD + "MadoRetrieveLocationUIDExtension"
EXT_NUMBER_OF_FRAMES = _MADO_SD + "MadoNumberOfFrames"
EXT_KO_DOCUMENT_TITLE = _MADO_SD + "MadoKeyObjectDocumentTitle"
EXT_DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
# The FHIR IG has no element for "this image is flagged by that Key Object Selection" (the Rev 0.6
# KOS extension); this project-owned complex extension carries it so the round trip is lossless.
EXT_KEY_IMAGE_FLAG = "urn:mado-gateway:fhir:StructureDefinition:key-image-flag"
# The Key Object Description copied into a flagged image reference (Rev 0.6 Content Sequence).
EXT_KEY_IMAGE_DESCRIPTION = "urn:mado-gateway:fhir:StructureDefinition:key-image-description"

# Endpoint.address values that mean "no WADO-RS base URL known" (profile rule and IG example).
PLACEHOLDER_ADDRESSES = frozenset({"http://notspecified", "http://notapplicable"})

# CID IHE-MADO1 "High-Level Anatomic Regions and Systems" by DICOM Body Part Examined
# (MADO Rev 1.1 Table 6.X.6.4-1): the study-level Target Region a Content Creator can derive.
HIGH_LEVEL_REGIONS = {
    body_part: Code(value=value, scheme="SCT", meaning=meaning)
    for body_part, value, meaning in (
        ("LOWERTRUNK", "63337009", "Lower trunk"),
        ("WHOLEBODY", "38266002", "Entire body"),
        ("UPPERLIMB", "53120007", "Upper limb"),
        ("LOWERLIMB", "61685007", "Lower limb"),
        ("UPPERTRUNK", "67734004", "Upper trunk"),
        ("HEADNECK", "774007", "Head and neck"),
        ("CARDIOVASCSYS", "113257007", "Cardiovascular system"),
        ("HEART", "80891009", "Heart"),
        ("BREAST", "76752008", "Breast"),
        ("SPINE", "1141981001", "Vertebral Column"),
    )
}
