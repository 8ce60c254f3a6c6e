"""Key Image Notes: what a KOS/KIN instance says, read from its dataset or WADO-RS metadata.

A Key Image Note (IHE KIN, DICOM TID 2010) is a Key Object Selection document whose title is a
CID 7010 code such as (113000, DCM, "Of Interest"), with an optional Key Object Description
(113012, DCM) TEXT item, and which references the flagged images in its Content Sequence and
Current Requested Procedure Evidence Sequence. MADO Rev 0.6 Appendix A and Rev 1.1 §6.X.2.9
copy the title and description into the manifest so a consumer need not fetch the KO series;
:func:`read_key_image_note` is how the Content Creator gets them, and how a consumer reads the
notes it had to fetch when a manifest lacks the extension.

A KOS whose title is a manifest title (113030, MADOTEMP001) is a manifest, not a note:
:func:`read_key_image_note` returns ``None`` for it, and for any non-KOS dataset.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from mado.kos_library import code_of, concept_of
from mado.model import Code
from mado.normalise import items_of, to_text
from mado.vocab import CODE_KEY_OBJECT_DESCRIPTION, KOS_SOP_CLASS_UID, MANIFEST_TITLES
from routing.errors import InvalidIdentifier
from routing.ids import Uid

__all__ = ["KeyImageNote", "NoteReference", "read_key_image_note"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteReference:
    """One instance a note flags."""

    series_uid: Uid
    sop_class_uid: Uid
    sop_instance_uid: Uid


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyImageNote:
    """A KOS/KIN: where it is, its title and description, and what it flags."""

    study_uid: Uid
    series_uid: Uid
    sop_instance_uid: Uid
    title: Code
    description: str | None
    references: tuple[NoteReference, ...]


def _uid(value: object) -> Uid | None:
    text = to_text(value)
    if text is None:
        return None
    try:
        return Uid(text)
    except InvalidIdentifier:
        return None


def read_key_image_note(ds: Dataset) -> KeyImageNote | None:
    """The note in ``ds``, or ``None`` when ``ds`` is not a KOS, is a manifest, or lacks UIDs."""
    if to_text(ds.get("SOPClassUID")) != KOS_SOP_CLASS_UID:
        return None
    title = code_of(ds, "ConceptNameCodeSequence")
    if title is None or any(title.same_concept(t) for t in MANIFEST_TITLES):
        return None
    study, series, sop = (
        _uid(ds.get(k)) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    )
    if study is None or series is None or sop is None:
        return None
    description = None
    for item in items_of(ds, "ContentSequence"):
        concept = concept_of(item)
        if concept is not None and concept.same_concept(CODE_KEY_OBJECT_DESCRIPTION):
            description = to_text(item.get("TextValue"))
            break
    return KeyImageNote(
        study_uid=study,
        series_uid=series,
        sop_instance_uid=sop,
        title=title,
        description=description,
        references=_references(ds),
    )


def _references(ds: Dataset) -> tuple[NoteReference, ...]:
    # The evidence sequence gives series UIDs; the content tree says which instances are
    # selected. An instance counts when the content references it (or, with no content
    # references at all, when the evidence lists it).
    located: dict[str, NoteReference] = {}
    for evidence in items_of(ds, "CurrentRequestedProcedureEvidenceSequence"):
        for series in items_of(evidence, "ReferencedSeriesSequence"):
            series_uid = _uid(series.get("SeriesInstanceUID"))
            for ref in items_of(series, "ReferencedSOPSequence"):
                sop = _uid(ref.get("ReferencedSOPInstanceUID"))
                sop_class = _uid(ref.get("ReferencedSOPClassUID"))
                if series_uid and sop and sop_class:
                    located[sop] = NoteReference(
                        series_uid=series_uid, sop_class_uid=sop_class, sop_instance_uid=sop
                    )
    selected = [
        sop
        for item in items_of(ds, "ContentSequence")
        for ref in items_of(item, "ReferencedSOPSequence")
        if (sop := _uid(ref.get("ReferencedSOPInstanceUID")))
    ]
    if not selected:
        return tuple(located.values())
    return tuple(located[sop] for sop in dict.fromkeys(selected) if sop in located)
