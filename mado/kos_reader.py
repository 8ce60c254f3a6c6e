"""Read a DICOM KOS-based MADO manifest (pydicom dataset) into the :class:`~mado.model.Manifest`.

Where each value comes from (MADO Rev 1.1 §6.X.2, and the Rev 0.6 draft §7.3.3 for the
attribute-level series and key-image extensions):

* patient: Patient ID, Issuer of Patient ID (Qualifiers Sequence), Other Patient IDs Sequence;
* study: General Study module, Referenced Request Sequence (0040,A370) for accession and
  placer order numbers, the study-level Display URI from the temporary private element
  (000D,xx01) of creator ``IHE_MADO_PRIVATE`` (§6.X.2.13), or Retrieve URI (0040,E010)
  as the Rev 0.6 draft had it;
* series and instances: Current Requested Procedure Evidence Sequence (0040,A375) >
  Referenced Series Sequence (0008,1115) > Referenced SOP Sequence (0008,1199);
  Retrieve Location UID (0040,E011) and Retrieve URL (0008,1190) per series (§6.X.2.14);
* descriptors the attributes lack (modality, description, number, date/time, body site,
  instance number, frames, KOS title/description) from the TID 1600 Image Library in the
  Content Sequence (§6.X.2.9). Entry descriptors are accepted both nested in the IMAGE item
  (TID 1601) and as the preceding siblings the IHE sample manifest uses.

Contract: :func:`read_kos` returns the manifest and the findings normalisation produced
(non-OID Retrieve Location UID, conflicting values, unparseable numbers). It raises
:class:`~mado.errors.NotAManifest` for a dataset that is not a Key Object Selection document,
:class:`~mado.errors.InvalidManifest` for a missing or invalid UID or a second study.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydicom.dataset import Dataset

from mado.errors import InvalidManifest, NotAManifest
from mado.model import (
    Code,
    Creator,
    Identifier,
    Instance,
    KeyImageFlag,
    KeyObjectSummary,
    Manifest,
    Patient,
    RequestedProcedure,
    Series,
    Study,
)
from mado.normalise import (
    to_dicom_date,
    to_dicom_time,
    to_int,
    to_offset,
    to_oid,
    to_text,
    to_uid,
    to_url,
)
from mado.report import Finding, Severity
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
    DISPLAY_URI_ELEMENT,
    DISPLAY_URI_GROUP,
    DISPLAY_URI_PRIVATE_CREATOR,
    KOS_SOP_CLASS_UID,
)

__all__ = ["code_of", "concept_of", "read_kos"]

T = TypeVar("T")

_EVIDENCE = "CurrentRequestedProcedureEvidenceSequence"
_SECTION_SERIES = "MADO Rev 1.1 §6.X.2.14"
_INSTANCE_CONCEPTS = (
    CODE_INSTANCE_NUMBER,
    CODE_NUMBER_OF_FRAMES,
    CODE_DOCUMENT_TITLE,
    CODE_KEY_OBJECT_DESCRIPTION,
)


def read_kos(ds: Dataset) -> tuple[Manifest, tuple[Finding, ...]]:
    """The manifest in ``ds`` and the findings reading it produced; see the module contract."""
    sop_class = to_text(ds.get("SOPClassUID"))
    if sop_class != KOS_SOP_CLASS_UID:
        raise NotAManifest(
            f"not a Key Object Selection document: SOP Class UID is {sop_class or 'missing'}, "
            f"a KOS manifest has {KOS_SOP_CLASS_UID}"
        )
    notes: list[Finding] = []
    evidence = _evidence_item(ds)
    library = _image_library(ds)
    series = tuple(
        _series(item, f"{_EVIDENCE}[0].ReferencedSeriesSequence[{i}]", library, notes)
        for i, item in enumerate(_seq(evidence, "ReferencedSeriesSequence"))
    )
    manifest = Manifest(
        patient=_patient(ds),
        study=_study(ds, evidence, library),
        series=series,
        creator=Creator(
            manufacturer=to_text(ds.get("Manufacturer")),
            institution=to_text(ds.get("InstitutionName")),
            timezone_offset=to_offset(ds.get("TimezoneOffsetFromUTC")),
        ),
        title=code_of(ds, "ConceptNameCodeSequence"),
        sop_instance_uid=to_uid(ds.get("SOPInstanceUID"), "SOPInstanceUID (0008,0018)"),
    )
    return manifest, tuple(notes)


def code_of(item: Dataset, keyword: str) -> Code | None:
    """The first coded entry of sequence ``keyword`` in ``item``, or ``None``."""
    for entry in _seq(item, keyword)[:1]:
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


def _seq(item: Dataset, keyword: str) -> Sequence[Dataset]:
    value: Any = item.get(keyword)
    return value if value is not None else ()


def _evidence_item(ds: Dataset) -> Dataset:
    items = _seq(ds, _EVIDENCE)
    if not items:
        raise InvalidManifest(f"{_EVIDENCE} (0040,A375)", "missing or empty: no study referenced")
    study = to_uid(items[0].get("StudyInstanceUID"), f"{_EVIDENCE}[0].StudyInstanceUID (0020,000D)")
    for i, item in enumerate(items[1:], start=1):
        other = to_uid(item.get("StudyInstanceUID"), f"{_EVIDENCE}[{i}].StudyInstanceUID")
        if other != study:
            raise InvalidManifest(
                f"{_EVIDENCE}[{i}].StudyInstanceUID (0020,000D)",
                f"second study {other}: a MADO manifest references exactly one study "
                "(MADO Rev 1.1 §6.X.2.13)",
            )
    if len(items) == 1:
        return items[0]
    # Several items for one study: merge their series so nothing listed is lost.
    merged = Dataset()
    merged.update(items[0])
    merged.ReferencedSeriesSequence = [
        s for it in items for s in _seq(it, "ReferencedSeriesSequence")
    ]
    return merged


def _identifier(item: Dataset, value_keyword: str, issuer_seq: str) -> Identifier | None:
    value = to_text(item.get(value_keyword))
    if value is None:
        return None
    qualifiers = _seq(item, issuer_seq)[:1]
    authority = authority_type = None
    for q in qualifiers:
        authority = to_text(q.get("UniversalEntityID")) or to_text(q.get("LocalNamespaceEntityID"))
        authority_type = to_text(q.get("UniversalEntityIDType"))
    issuer = to_text(item.get("IssuerOfPatientID")) if value_keyword == "PatientID" else None
    return Identifier(
        value=value, authority=authority, authority_type=authority_type, issuer=issuer
    )


def _patient(ds: Dataset) -> Patient:
    others = tuple(
        ident
        for item in _seq(ds, "OtherPatientIDsSequence")
        if (ident := _identifier(item, "PatientID", "IssuerOfPatientIDQualifiersSequence"))
    )
    return Patient(
        id=_identifier(ds, "PatientID", "IssuerOfPatientIDQualifiersSequence"),
        other_ids=others,
        name=to_text(ds.get("PatientName")),
        birth_date=to_dicom_date(ds.get("PatientBirthDate")),
        sex=to_text(ds.get("PatientSex")),
    )


def _study(ds: Dataset, evidence: Dataset, library: _Library) -> Study:
    uid = to_uid(evidence.get("StudyInstanceUID"), f"{_EVIDENCE}[0].StudyInstanceUID (0020,000D)")
    top = to_text(ds.get("StudyInstanceUID"))
    if top is not None and top != uid:
        raise InvalidManifest(
            "StudyInstanceUID (0020,000D)",
            f"{top} differs from the referenced study {uid}: one manifest, one study "
            "(MADO Rev 1.1 §6.X.2.2)",
        )
    requests = tuple(
        RequestedProcedure(
            accession=_identifier(item, "AccessionNumber", "IssuerOfAccessionNumberSequence"),
            placer_order=_identifier(
                item, "PlacerOrderNumberImagingServiceRequest", "OrderPlacerIdentifierSequence"
            ),
        )
        for item in _seq(ds, "ReferencedRequestSequence")
    )
    return Study(
        uid=uid,
        date=to_dicom_date(ds.get("StudyDate")),
        time=to_dicom_time(ds.get("StudyTime")),
        description=to_text(ds.get("StudyDescription")),
        accession=_identifier(ds, "AccessionNumber", "IssuerOfAccessionNumberSequence"),
        requests=requests,
        target_regions=library.target_regions,
        viewer_url=_viewer_url(evidence) or _viewer_url(ds),
    )


def _viewer_url(item: Dataset) -> str | None:
    try:
        block = item.private_block(DISPLAY_URI_GROUP, DISPLAY_URI_PRIVATE_CREATOR)
    except KeyError:
        block = None
    if block is not None and DISPLAY_URI_ELEMENT in block:
        url = to_url(block[DISPLAY_URI_ELEMENT].value)
        if url:
            return url
    return to_url(item.get("RetrieveURI"))


@dataclass(slots=True)
class _Entry:
    """Descriptors of one TID 1601 Image Library Entry."""

    number: int | None = None
    frames: int | None = None
    title: Code | None = None
    description: str | None = None


@dataclass(slots=True)
class _Group:
    """Descriptors of one TID 1600 Image Library Group (one series)."""

    modality: str | None = None
    description: str | None = None
    number: int | None = None
    date: str | None = None
    time: str | None = None
    body_site: Code | None = None
    entries: dict[str, _Entry] = field(default_factory=dict)


@dataclass(slots=True)
class _Library:
    target_regions: tuple[Code, ...] = ()
    groups: dict[str, _Group] = field(default_factory=dict)


def _image_library(ds: Dataset) -> _Library:
    library = _Library()
    for item in _seq(ds, "ContentSequence"):
        concept = concept_of(item)
        if concept is None or not concept.same_concept(CODE_IMAGE_LIBRARY):
            continue
        regions: list[Code] = []
        for child in _seq(item, "ContentSequence"):
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


def _group(container: Dataset) -> tuple[str | None, _Group]:
    group = _Group()
    uid: str | None = None
    pending: list[Dataset] = []
    for item in _seq(container, "ContentSequence"):
        refs = _seq(item, "ReferencedSOPSequence")
        if refs:
            entry = _entry([*pending, *_seq(item, "ContentSequence")])
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
    for measured in _seq(item, "MeasuredValueSequence")[:1]:
        return measured.get("NumericValue")
    return None


def _entry(descriptors: Iterable[Dataset]) -> _Entry:
    entry = _Entry()
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


def _series(item: Dataset, path: str, library: _Library, notes: list[Finding]) -> Series:
    uid = to_uid(item.get("SeriesInstanceUID"), f"{path}.SeriesInstanceUID (0020,000E)")
    group = library.groups.get(uid, _Group())
    raw_rluid = to_text(item.get("RetrieveLocationUID"))
    rluid = to_oid(raw_rluid)
    if raw_rluid is not None and rluid is None:
        notes.append(
            Finding(
                path=f"{path}.RetrieveLocationUID (0040,E011)",
                rule="R+ OID",
                message=f"{raw_rluid[:64]!r} is not an OID; treated as absent",
                severity=Severity.ERROR,
                section=_SECTION_SERIES,
            )
        )
    url = _retrieve_url(item)
    instances = tuple(
        _instance(ref, f"{path}.ReferencedSOPSequence[{i}]", group, notes)
        for i, ref in enumerate(_seq(item, "ReferencedSOPSequence"))
    )
    return Series(
        uid=uid,
        modality=_merge(to_text(item.get("Modality")), group.modality, f"{path}.Modality", notes),
        description=_merge(
            to_text(item.get("SeriesDescription")),
            group.description,
            f"{path}.SeriesDescription",
            notes,
        ),
        number=_merge(
            to_int(item.get("SeriesNumber")), group.number, f"{path}.SeriesNumber", notes
        ),
        date=_merge(to_dicom_date(item.get("SeriesDate")), group.date, f"{path}.SeriesDate", notes),
        time=_merge(to_dicom_time(item.get("SeriesTime")), group.time, f"{path}.SeriesTime", notes),
        body_site=group.body_site,
        retrieve_location_uid=rluid,
        retrieve_url=url,
        instances=instances,
    )


def _retrieve_url(item: Dataset) -> str | None:
    url = to_url(item.get("RetrieveURL"))
    if url is not None:
        return url
    # Tolerated: the HL7 Europe draft carried the WADO URL in WADO-RS Retrieval Sequence.
    for wado in _seq(item, "WADORSRetrievalSequence")[:1]:
        return to_url(wado.get("RetrieveURL"))
    return None


def _instance(ref: Dataset, path: str, group: _Group, notes: list[Finding]) -> Instance:
    sop = to_uid(
        ref.get("ReferencedSOPInstanceUID"), f"{path}.ReferencedSOPInstanceUID (0008,1155)"
    )
    sop_class = to_uid(
        ref.get("ReferencedSOPClassUID"), f"{path}.ReferencedSOPClassUID (0008,1150)"
    )
    entry = group.entries.get(sop, _Entry())
    flags = tuple(
        flag
        for i, related in enumerate(_seq(ref, "RelatedSeriesSequence"))
        for flag in _flags(related, f"{path}.RelatedSeriesSequence[{i}]")
    )
    key_description = None
    for text in _seq(ref, "ContentSequence")[:1]:
        key_description = to_text(text.get("TextValue"))
    key_object = (
        KeyObjectSummary(title=entry.title, description=entry.description)
        if entry.title is not None
        else None
    )
    return Instance(
        sop_class_uid=sop_class,
        sop_instance_uid=sop,
        number=_merge(
            to_int(ref.get("InstanceNumber")), entry.number, f"{path}.InstanceNumber", notes
        ),
        frames=_merge(
            to_int(ref.get("NumberOfFrames")), entry.frames, f"{path}.NumberOfFrames", notes
        ),
        key_object=key_object,
        flagged_by=flags,
        key_description=key_description,
    )


def _flags(related: Dataset, path: str) -> Iterable[KeyImageFlag]:
    series = to_uid(related.get("SeriesInstanceUID"), f"{path}.SeriesInstanceUID (0020,000E)")
    for i, ref in enumerate(_seq(related, "ReferencedSOPSequence")):
        where = f"{path}.ReferencedSOPSequence[{i}]"
        purpose = code_of(ref, "PurposeOfReferenceCodeSequence")
        yield KeyImageFlag(
            series_uid=series,
            sop_instance_uid=to_uid(
                ref.get("ReferencedSOPInstanceUID"), f"{where}.ReferencedSOPInstanceUID"
            ),
            sop_class_uid=to_uid(
                ref.get("ReferencedSOPClassUID"), f"{where}.ReferencedSOPClassUID"
            ),
            # A flag without a purpose still flags the image; "Of Interest" is the MADO default.
            purpose=purpose or Code(value="113000", scheme="DCM", meaning="Of Interest"),
        )


def _merge(attribute: T | None, library: T | None, path: str, notes: list[Finding]) -> T | None:
    """The attribute value, else the Image Library value; a disagreement is a warning."""
    if attribute is not None and library is not None and attribute != library:
        notes.append(
            Finding(
                path=path,
                rule="consistency",
                message=f"attribute says {attribute!r}, TID 1600 Image Library says {library!r}; "
                "the attribute is used",
                severity=Severity.WARNING,
                section="MADO Rev 1.1 §6.X.2.9",
            )
        )
    return attribute if attribute is not None else library
