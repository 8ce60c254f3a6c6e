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

from collections.abc import Iterable
from typing import TypeVar

from pydicom.dataset import Dataset

from mado.errors import InvalidManifest, NotAManifest
from mado.kos_library import (
    ImageLibrary,
    LibraryEntry,
    LibraryGroup,
    code_of,
    concept_of,
    image_library,
)
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
    items_of,
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
    DISPLAY_URI_ELEMENT,
    DISPLAY_URI_GROUP,
    DISPLAY_URI_PRIVATE_CREATOR,
    KOS_SOP_CLASS_UID,
)

__all__ = ["code_of", "concept_of", "read_kos"]

T = TypeVar("T")

_EVIDENCE = "CurrentRequestedProcedureEvidenceSequence"
_SECTION_SERIES = "MADO Rev 1.1 §6.X.2.14"


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
    library = image_library(ds)
    series = tuple(
        _series(item, f"{_EVIDENCE}[0].ReferencedSeriesSequence[{i}]", library, notes)
        for i, item in enumerate(items_of(evidence, "ReferencedSeriesSequence"))
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


def _evidence_item(ds: Dataset) -> Dataset:
    items = items_of(ds, _EVIDENCE)
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
        s for it in items for s in items_of(it, "ReferencedSeriesSequence")
    ]
    return merged


def _identifier(item: Dataset, value_keyword: str, issuer_seq: str) -> Identifier | None:
    value = to_text(item.get(value_keyword))
    if value is None:
        return None
    qualifiers = items_of(item, issuer_seq)[:1]
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
        for item in items_of(ds, "OtherPatientIDsSequence")
        if (ident := _identifier(item, "PatientID", "IssuerOfPatientIDQualifiersSequence"))
    )
    return Patient(
        id=_identifier(ds, "PatientID", "IssuerOfPatientIDQualifiersSequence"),
        other_ids=others,
        name=to_text(ds.get("PatientName")),
        birth_date=to_dicom_date(ds.get("PatientBirthDate")),
        sex=to_text(ds.get("PatientSex")),
    )


def _study(ds: Dataset, evidence: Dataset, library: ImageLibrary) -> Study:
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
        for item in items_of(ds, "ReferencedRequestSequence")
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


def _series(item: Dataset, path: str, library: ImageLibrary, notes: list[Finding]) -> Series:
    uid = to_uid(item.get("SeriesInstanceUID"), f"{path}.SeriesInstanceUID (0020,000E)")
    group = library.groups.get(uid, LibraryGroup())
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
        for i, ref in enumerate(items_of(item, "ReferencedSOPSequence"))
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
        opaque_location=raw_rluid[:64] if rluid is None and raw_rluid is not None else None,
        retrieve_url=url,
        instances=instances,
    )


def _retrieve_url(item: Dataset) -> str | None:
    url = to_url(item.get("RetrieveURL"))
    if url is not None:
        return url
    # Tolerated: the HL7 Europe draft carried the WADO URL in WADO-RS Retrieval Sequence.
    for wado in items_of(item, "WADORSRetrievalSequence")[:1]:
        return to_url(wado.get("RetrieveURL"))
    return None


def _instance(ref: Dataset, path: str, group: LibraryGroup, notes: list[Finding]) -> Instance:
    sop = to_uid(
        ref.get("ReferencedSOPInstanceUID"), f"{path}.ReferencedSOPInstanceUID (0008,1155)"
    )
    sop_class = to_uid(
        ref.get("ReferencedSOPClassUID"), f"{path}.ReferencedSOPClassUID (0008,1150)"
    )
    entry = group.entries.get(sop, LibraryEntry())
    flags = tuple(
        flag
        for i, related in enumerate(items_of(ref, "RelatedSeriesSequence"))
        for flag in _flags(related, f"{path}.RelatedSeriesSequence[{i}]")
    )
    key_description = None
    for text in items_of(ref, "ContentSequence")[:1]:
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
    for i, ref in enumerate(items_of(related, "ReferencedSOPSequence")):
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
