"""The SR content of a KOS manifest: coded items, and the TID 1600 Image Library.

MADO Rev 1.1 §6.X.2.9 puts series and instance descriptors the attributes lack (modality,
description, number, date and time, body site; instance number, frames, KOS title and
description) in the Image Library of the Content Sequence: one Image Library Group (TID 1602)
per series, one entry (TID 1601) per instance. Entry descriptors are accepted both nested in
the IMAGE item and as the preceding siblings the IHE sample manifest uses. Values may be
TEXT, DATE, TIME or NUM items whatever the template says (see docs/manifests.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from mado.model import Code
from mado.normalise import items_of, to_dicom_date, to_dicom_time, to_int, to_text
from mado.vocab import (
    CODE_DOCUMENT_TITLE,
    CODE_IMAGE_LIBRARY,
    CODE_IMAGE_LIBRARY_GROUP,
    CODE_INSTANCE_NUMBER,
    CODE_KEY_OBJECT_DESCRIPTION,
    CODE_MODALITY,
    CODE_NUMBER_OF_FRAMES,
    CODE_SERIES_DATE,
    CODE_SERIES_DESCRIPTION,
    CODE_SERIES_INSTANCE_UID,
    CODE_SERIES_NUMBER,
    CODE_SERIES_TIME,
    CODE_TARGET_REGION,
)

__all__ = [
    "ImageLibrary",
    "LibraryEntry",
    "LibraryGroup",
    "code_of",
    "concept_of",
    "image_library",
]

_INSTANCE_CONCEPTS = (
    CODE_INSTANCE_NUMBER,
    CODE_NUMBER_OF_FRAMES,
    CODE_DOCUMENT_TITLE,
    CODE_KEY_OBJECT_DESCRIPTION,
)


def code_of(item: Dataset, keyword: str) -> Code | None:
    """The first coded entry of sequence ``keyword`` in ``item``, or ``None``."""
    for entry in items_of(item, keyword)[:1]:
        value = to_text(entry.get("CodeValue")) or to_text(entry.get("LongCodeValue"))
        if value is None:
            return None
        return Code(
            value=value,
            scheme=to_text(entry.get("CodingSchemeDesignator")) or "",
            meaning=to_text(entry.get("CodeMeaning")) or "",
        )
    return None


def concept_of(item: Dataset) -> Code | None:
    """The Concept Name of an SR content item."""
    return code_of(item, "ConceptNameCodeSequence")


@dataclass(slots=True)
class LibraryEntry:
    """Descriptors of one TID 1601 Image Library Entry."""

    number: int | None = None
    frames: int | None = None
    title: Code | None = None
    description: str | None = None


@dataclass(slots=True)
class LibraryGroup:
    """Descriptors of one TID 1600 Image Library Group (one series)."""

    modality: str | None = None
    description: str | None = None
    number: int | None = None
    date: str | None = None
    time: str | None = None
    body_site: Code | None = None
    entries: dict[str, LibraryEntry] = field(default_factory=dict)


@dataclass(slots=True)
class ImageLibrary:
    """What the TID 1600 Image Library says: target regions, and a group per series UID."""

    target_regions: tuple[Code, ...] = ()
    groups: dict[str, LibraryGroup] = field(default_factory=dict)


def image_library(ds: Dataset) -> ImageLibrary:
    library = ImageLibrary()
    for item in items_of(ds, "ContentSequence"):
        concept = concept_of(item)
        if concept is None or not concept.same_concept(CODE_IMAGE_LIBRARY):
            continue
        regions: list[Code] = []
        for child in items_of(item, "ContentSequence"):
            child_concept = concept_of(child)
            if child_concept is None:
                continue
            if child_concept.same_concept(CODE_TARGET_REGION):
                region = code_of(child, "ConceptCodeSequence")
                if region is not None:
                    regions.append(region)
            elif child_concept.same_concept(CODE_IMAGE_LIBRARY_GROUP):
                uid, group = _group(child)
                if uid is not None:
                    library.groups[uid] = group
        library.target_regions = tuple(regions)
    return library


def _group(container: Dataset) -> tuple[str | None, LibraryGroup]:
    group = LibraryGroup()
    uid: str | None = None
    pending: list[Dataset] = []
    for item in items_of(container, "ContentSequence"):
        refs = items_of(item, "ReferencedSOPSequence")
        if refs:
            entry = _entry([*pending, *items_of(item, "ContentSequence")])
            pending = []
            sop = to_text(refs[0].get("ReferencedSOPInstanceUID"))
            if sop is not None:
                group.entries[sop] = entry
            continue
        concept = concept_of(item)
        if concept is None:
            continue
        if any(concept.same_concept(c) for c in _INSTANCE_CONCEPTS):
            pending.append(item)
        elif concept.same_concept(CODE_SERIES_INSTANCE_UID):
            uid = to_text(item.get("UID"))
        elif concept.same_concept(CODE_MODALITY):
            code = code_of(item, "ConceptCodeSequence")
            group.modality = code.value if code else None
        elif concept.same_concept(CODE_SERIES_DESCRIPTION):
            group.description = to_text(item.get("TextValue"))
        elif concept.same_concept(CODE_SERIES_NUMBER):
            group.number = to_int(_scalar(item))
        elif concept.same_concept(CODE_SERIES_DATE):
            group.date = to_dicom_date(_scalar(item))
        elif concept.same_concept(CODE_SERIES_TIME):
            group.time = to_dicom_time(_scalar(item))
        elif concept.same_concept(CODE_TARGET_REGION):
            group.body_site = code_of(item, "ConceptCodeSequence")
    return uid, group


def _scalar(item: Dataset) -> object:
    """The value of a TEXT, DATE, TIME or NUM content item, whatever the value type used."""
    for keyword in ("TextValue", "Date", "Time"):
        if item.get(keyword) is not None:
            return item.get(keyword)
    for measured in items_of(item, "MeasuredValueSequence")[:1]:
        return measured.get("NumericValue")
    return None


def _entry(descriptors: Iterable[Dataset]) -> LibraryEntry:
    entry = LibraryEntry()
    for item in descriptors:
        concept = concept_of(item)
        if concept is None:
            continue
        if concept.same_concept(CODE_INSTANCE_NUMBER):
            entry.number = to_int(_scalar(item))
        elif concept.same_concept(CODE_NUMBER_OF_FRAMES):
            entry.frames = to_int(_scalar(item))
        elif concept.same_concept(CODE_DOCUMENT_TITLE):
            entry.title = code_of(item, "ConceptCodeSequence")
        elif concept.same_concept(CODE_KEY_OBJECT_DESCRIPTION):
            entry.description = to_text(item.get("TextValue"))
    return entry
