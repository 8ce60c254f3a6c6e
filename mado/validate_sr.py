"""MADO content requirements of a KOS manifest's SR content tree.

The root (TID 2010 Key Object Selection with the manifest's document title) and the TID 1600
Image Library with its groups (TID 1602) and entries, per MADO Rev 1.1 §6.X.2.9 and the Rev 0.6
§7.3.3.6 tables. The attribute-level rules are in :mod:`mado.validate_kos`, which calls
:func:`check_content_tree`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset

from mado.checks import EVIDENCE, R06, R11, Checker
from mado.kos_library import code_of, concept_of
from mado.normalise import items_of, to_text
from mado.report import Severity
from mado.vocab import (
    CODE_DOCUMENT_TITLE,
    CODE_IMAGE_LIBRARY,
    CODE_IMAGE_LIBRARY_GROUP,
    CODE_MODALITY,
    CODE_SERIES_INSTANCE_UID,
    CODE_SERIES_RELATED_INSTANCES,
    CODE_STUDY_RELATED_SERIES,
    CODE_TARGET_REGION,
    KOS_SOP_CLASS_UID,
    MANIFEST_TITLES,
)

__all__ = ["check_content_tree", "library_series_modalities"]


def check_content_tree(check: Checker, ds: Dataset) -> None:
    """The SR root and the Image Library of ``ds``."""
    _sr_root(check, ds)
    _image_library(check, ds)


def _sr_root(check: Checker, ds: Dataset) -> None:
    section = R06 + "Table 7.3.3.6.2-1"
    check.fixed(ds, "ValueType", "(0040,A040)", "", "CONTAINER", section)
    check.fixed(ds, "ContinuityOfContent", "(0040,A050)", "", "SEPARATE", section)
    if check.present(ds, "ConceptNameCodeSequence", "(0040,A043)", "", "R+", section):
        title = code_of(ds, "ConceptNameCodeSequence")
        if title is None or not any(title.same_concept(t) for t in MANIFEST_TITLES):
            shown = f"({title.value}, {title.scheme}, {title.meaning!r})" if title else "no code"
            check.add(
                "ConceptNameCodeSequence[0] (0040,A043)",
                "fixed value",
                f"document title is {shown}; a manifest has (113030, DCM, 'Manifest') or, "
                "in Rev 1.1, (MADOTEMP001, 99IHE, 'Manifest with Description')",
                section + "; " + R11 + "§6.X.2.9",
                Severity.ERROR,
            )
    templates = items_of(ds, "ContentTemplateSequence")
    for t in templates[:1]:
        check.fixed(
            t, "MappingResource", "(0008,0105)", "ContentTemplateSequence[0]", "DCMR", section
        )
        check.fixed(
            t, "TemplateIdentifier", "(0040,DB00)", "ContentTemplateSequence[0]", "2010", section
        )
    check.present(ds, "ContentSequence", "(0040,A730)", "", "R+", section)


def _library_items(ds: Dataset) -> Iterator[tuple[int, Dataset]]:
    for i, item in enumerate(items_of(ds, "ContentSequence")):
        concept = concept_of(item)
        if concept is not None and concept.same_concept(CODE_IMAGE_LIBRARY):
            yield i, item


def library_series_modalities(ds: Dataset) -> dict[str, str]:
    found: dict[str, str] = {}
    for _, library in _library_items(ds):
        for group in items_of(library, "ContentSequence"):
            uid = modality = None
            for item in items_of(group, "ContentSequence"):
                concept = concept_of(item)
                if concept is None:
                    continue
                if concept.same_concept(CODE_SERIES_INSTANCE_UID):
                    uid = to_text(item.get("UID"))
                elif concept.same_concept(CODE_MODALITY):
                    code = code_of(item, "ConceptCodeSequence")
                    modality = code.value if code else None
            if uid and modality:
                found[uid] = modality
    return found


def _concepts(items: Sequence[Dataset]) -> list[Any]:
    return [c for item in items if (c := concept_of(item)) is not None]


def _image_library(check: Checker, ds: Dataset) -> None:
    section = R11 + "§6.X.2.9"
    libraries = list(_library_items(ds))
    if not libraries:
        check.add(
            "ContentSequence (0040,A730)",
            "R",
            "no TID 1600 Image Library container (111028, DCM)",
            section,
            Severity.ERROR,
        )
        return
    index, library = libraries[0]
    path = f"ContentSequence[{index}]"
    if to_text(library.get("ContinuityOfContent")) is None:
        check.add(
            f"{path}.ContinuityOfContent (0040,A050)",
            "1",
            "attribute is missing",
            "DICOM PS3.3 C.17.3",
            Severity.ERROR,
        )
    children = items_of(library, "ContentSequence")
    concepts = _concepts(children)
    for concept, label in (
        (CODE_MODALITY, "Modality"),
        (CODE_TARGET_REGION, "Target Region"),
        (CODE_STUDY_RELATED_SERIES, "Number of Study Related Series"),
    ):
        if not any(c.same_concept(concept) for c in concepts):
            check.add(
                f"{path}.ContentSequence",
                "R+",
                f"no ({concept.value}, {concept.scheme}, {label!r}) item",
                section + " Table 6.X.2.9-1",
                Severity.ERROR,
            )
    groups = [
        (g, item)
        for g, item in enumerate(children)
        if (c := concept_of(item)) is not None and c.same_concept(CODE_IMAGE_LIBRARY_GROUP)
    ]
    series_count = sum(len(items_of(e, "ReferencedSeriesSequence")) for e in items_of(ds, EVIDENCE))
    if len(groups) != series_count:
        check.add(
            f"{path}.ContentSequence",
            "R+",
            f"{len(groups)} Image Library Group(s) for {series_count} referenced series; "
            "each shared series shall have one",
            section,
            Severity.ERROR,
        )
    for g, group in groups:
        where = f"{path}.ContentSequence[{g}]"
        group_items = items_of(group, "ContentSequence")
        group_concepts = _concepts(group_items)
        for concept, label in (
            (CODE_MODALITY, "Modality"),
            (CODE_SERIES_INSTANCE_UID, "Series Instance UID"),
            (CODE_SERIES_RELATED_INSTANCES, "Number of Series Related Instances"),
        ):
            if not any(c.same_concept(concept) for c in group_concepts):
                check.add(
                    f"{where}.ContentSequence",
                    "R+",
                    f"no ({concept.value}, {concept.scheme}, {label!r}) item",
                    section + " Table 6.X.2.9-2",
                    Severity.ERROR,
                )
        _kos_entries(check, group_items, where)


def _kos_entries(check: Checker, items: Sequence[Dataset], path: str) -> None:
    """A KOS/KIN entry needs its Document Title (TID 16XX, R+)."""
    pending: list[Dataset] = []
    for e, item in enumerate(items):
        refs = items_of(item, "ReferencedSOPSequence")
        if not refs:
            pending.append(item)
            continue
        descriptors = [*pending, *items_of(item, "ContentSequence")]
        pending = []
        if to_text(refs[0].get("ReferencedSOPClassUID")) != KOS_SOP_CLASS_UID:
            continue
        if not any(c.same_concept(CODE_DOCUMENT_TITLE) for c in _concepts(descriptors)):
            check.add(
                f"{path}.ContentSequence[{e}]",
                "R+",
                "KOS/KIN entry without (121144, DCM, 'Document Title')",
                R11 + "§6.X.2.9 Table 6.X.2.9-4",
                Severity.ERROR,
            )
