"""Content Creator: a MADO KOS manifest for a study, from its WADO-RS metadata.

Input is what WADO-RS Retrieve Metadata returns for a study (DICOM JSON, PS3.18 F.2): a list of
instance metadata objects. The manifest lists every instance except existing MADO manifests
(§6.X.2.2: a manifest does not list itself); the Retrieve Location UID and Retrieve URL come
from the caller, per series if it wishes (§6.X.2.14). Each Key Image Note among the instances
(a KOS whose title is not a manifest title) becomes:

* a TID 16XX summary on its own entry: title and Key Object Description (Rev 1.1 §6.X.2.9);
* a key-image flag on every image it references, with the note's title as Purpose of Reference
  (113000 "Of Interest" for a KIN of that title), and its description copied into the image
  reference (Rev 0.6 Table 7.3.3.5.2-1, Appendix A).

The study-level Target Region (TID 1600, R+) and each series' body site are derived from Body
Part Examined through CID IHE-MADO1 (Table 6.X.6.4-1) and the terms that lie within its
regions (:mod:`mado.regions`); when no instance's body part maps, the study's region is
"Topography unknown" (the value set is extensible), so the R+ item is always written.
Patient, study and request identifiers, and the Institution Name unless the caller gives one,
are taken from the first instance that has them; an absent Other Patient IDs Sequence is filled
with the Patient ID (§6.X.2.5.1.1.2 requires it there). Raises
:class:`~mado.errors.CreationError` for metadata that is not a list of DICOM JSON objects, has
no instances, or mixes studies.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydicom.dataset import Dataset

from mado.errors import CreationError, InvalidManifest
from mado.kin import KeyImageNote, read_key_image_note
from mado.kos_library import code_of
from mado.kos_writer import write_kos
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
from mado.normalise import to_dicom_date, to_dicom_time, to_int, to_offset, to_text, to_uid, to_url
from mado.regions import regions_of, study_regions
from mado.vocab import KOS_SOP_CLASS_UID, MANIFEST_TITLES
from routing.ids import Oid, Uid

__all__ = ["SeriesLocation", "build_manifest", "create_kos", "datasets_from_metadata"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesLocation:
    """Where a series can be retrieved: Retrieve Location UID (R+) and Retrieve URL (O)."""

    retrieve_location_uid: Oid
    retrieve_url: str | None = None


def datasets_from_metadata(metadata: object) -> list[Dataset]:
    """Datasets from decoded WADO-RS metadata; bulk data references are dropped."""
    if not isinstance(metadata, list) or not metadata:
        raise CreationError("WADO-RS metadata must be a non-empty JSON array of instance objects")
    datasets = []
    for i, item in enumerate(metadata):
        if not isinstance(item, dict):
            raise CreationError(f"metadata[{i}] is not a DICOM JSON object")
        try:
            datasets.append(Dataset.from_json(item, bulk_data_uri_handler=_no_bulk_data))
        except (ValueError, TypeError, KeyError) as exc:
            raise CreationError(f"metadata[{i}] is not valid DICOM JSON ({exc})") from None
    return datasets


def _no_bulk_data(_tag: str, _vr: str, _uri: str) -> bytes:
    # The manifest needs no pixel data or other bulk values; never fetch them.
    return b""


def build_manifest(
    instances: Sequence[Dataset],
    location: SeriesLocation,
    *,
    per_series: Mapping[str, SeriesLocation] | None = None,
    manufacturer: str = "mado-gateway",
    institution: str | None = None,
    timezone_offset: str | None = None,
    viewer_url: str | None = None,
) -> Manifest:
    """The manifest model for one study's instances; see the module contract."""
    if not instances:
        raise CreationError("no instances in the metadata")
    studies = {to_text(ds.get("StudyInstanceUID")) for ds in instances}
    if len(studies) != 1 or None in studies:
        raise CreationError(
            f"metadata covers {len(studies)} studies "
            f"({', '.join(sorted(s or '?' for s in studies))}); a manifest describes exactly one"
        )
    try:
        return _build(
            instances,
            location,
            per_series or {},
            manufacturer=manufacturer,
            institution=institution,
            timezone_offset=timezone_offset,
            viewer_url=viewer_url,
        )
    except InvalidManifest as exc:
        raise CreationError(f"metadata {exc}") from None


def create_kos(
    metadata: object,
    location: SeriesLocation,
    *,
    now: datetime | None = None,
    **options: Any,
) -> Dataset:
    """A KOS manifest dataset from decoded WADO-RS metadata (see :func:`build_manifest`)."""
    manifest = build_manifest(datasets_from_metadata(metadata), location, **options)
    return write_kos(manifest, now=now)


def _first(instances: Iterable[Dataset], keyword: str) -> Any:
    return next((ds.get(keyword) for ds in instances if to_text(ds.get(keyword)) is not None), None)


def _identifier(
    ds: Dataset, value_kw: str, issuer_kw: str, label_kw: str | None = None
) -> Identifier | None:
    value = to_text(ds.get(value_kw))
    if value is None:
        return None
    authority = authority_type = None
    for q in list(ds.get(issuer_kw) or ())[:1]:
        authority = to_text(q.get("UniversalEntityID"))
        authority_type = to_text(q.get("UniversalEntityIDType"))
    return Identifier(
        value=value,
        authority=authority,
        authority_type=authority_type,
        issuer=to_text(ds.get(label_kw)) if label_kw else None,
    )


def _is_manifest(ds: Dataset) -> bool:
    if to_text(ds.get("SOPClassUID")) != KOS_SOP_CLASS_UID:
        return False
    title = code_of(ds, "ConceptNameCodeSequence")
    return title is not None and any(title.same_concept(t) for t in MANIFEST_TITLES)


def _build(
    instances: Sequence[Dataset],
    location: SeriesLocation,
    per_series: Mapping[str, SeriesLocation],
    *,
    manufacturer: str,
    institution: str | None,
    timezone_offset: str | None,
    viewer_url: str | None,
) -> Manifest:
    listed = [ds for ds in instances if not _is_manifest(ds)]
    if not listed:
        raise CreationError("the study holds only manifests; nothing to list")
    first = listed[0]
    notes = [n for ds in listed if (n := read_key_image_note(ds)) is not None]
    flags, descriptions = _flags(notes)
    by_note: dict[str, KeyImageNote] = {n.sop_instance_uid: n for n in notes}
    series_order: dict[str, list[Dataset]] = {}
    for ds in listed:
        series_order.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append(ds)
    series = tuple(
        _series(
            uid,
            members,
            per_series.get(uid, location),
            flags=flags,
            descriptions=descriptions,
            notes=by_note,
        )
        for uid, members in series_order.items()
    )
    patient_id = _identifier(
        first, "PatientID", "IssuerOfPatientIDQualifiersSequence", "IssuerOfPatientID"
    )
    others = tuple(
        ident
        for item in (first.get("OtherPatientIDsSequence") or ())
        if (
            ident := _identifier(
                item, "PatientID", "IssuerOfPatientIDQualifiersSequence", "IssuerOfPatientID"
            )
        )
    )
    if patient_id and patient_id not in others:
        others = (patient_id, *others)
    accession = _identifier(first, "AccessionNumber", "IssuerOfAccessionNumberSequence")
    requests = _requests(listed)
    if not requests and accession:
        requests = (RequestedProcedure(accession=accession),)
    return Manifest(
        patient=Patient(
            id=patient_id,
            other_ids=others,
            name=to_text(first.get("PatientName")),
            birth_date=to_dicom_date(first.get("PatientBirthDate")),
            sex=to_text(first.get("PatientSex")),
        ),
        study=Study(
            uid=to_uid(first.get("StudyInstanceUID"), "StudyInstanceUID"),
            date=to_dicom_date(_first(listed, "StudyDate")),
            time=to_dicom_time(_first(listed, "StudyTime")),
            description=to_text(_first(listed, "StudyDescription")),
            accession=accession,
            requests=requests,
            target_regions=study_regions(
                region
                for ds in listed
                for region in regions_of(to_text(ds.get("BodyPartExamined")))
            ),
            viewer_url=to_url(viewer_url),
        ),
        series=series,
        creator=Creator(
            manufacturer=manufacturer,
            institution=institution or to_text(_first(listed, "InstitutionName")),
            timezone_offset=to_offset(timezone_offset)
            or to_offset(_first(listed, "TimezoneOffsetFromUTC"))
            or datetime.now().astimezone().strftime("%z"),
        ),
    )


def _requests(instances: Sequence[Dataset]) -> tuple[RequestedProcedure, ...]:
    seen: dict[tuple[str | None, str | None], RequestedProcedure] = {}
    for ds in instances:
        for item in ds.get("RequestAttributesSequence") or ():
            request = RequestedProcedure(
                accession=_identifier(item, "AccessionNumber", "IssuerOfAccessionNumberSequence"),
                placer_order=_identifier(
                    item, "PlacerOrderNumberImagingServiceRequest", "OrderPlacerIdentifierSequence"
                ),
            )
            key = (
                request.accession.value if request.accession else None,
                request.placer_order.value if request.placer_order else None,
            )
            seen.setdefault(key, request)
    return tuple(seen.values())


def _flags(notes: Sequence[KeyImageNote]) -> tuple[dict[str, list[KeyImageFlag]], dict[str, str]]:
    flags: dict[str, list[KeyImageFlag]] = {}
    descriptions: dict[str, str] = {}
    for note in notes:
        for ref in note.references:
            flags.setdefault(ref.sop_instance_uid, []).append(
                KeyImageFlag(
                    series_uid=note.series_uid,
                    sop_instance_uid=note.sop_instance_uid,
                    sop_class_uid=Uid(KOS_SOP_CLASS_UID),
                    purpose=note.title,
                )
            )
            if note.description:
                descriptions.setdefault(ref.sop_instance_uid, note.description)
    return flags, descriptions


def _series(
    uid: str,
    members: Sequence[Dataset],
    location: SeriesLocation,
    *,
    flags: Mapping[str, list[KeyImageFlag]],
    descriptions: Mapping[str, str],
    notes: Mapping[str, KeyImageNote],
) -> Series:
    first = members[0]
    instances = []
    for ds in sorted(members, key=lambda d: to_int(d.get("InstanceNumber")) or 0):
        sop = to_uid(ds.get("SOPInstanceUID"), f"series {uid} SOPInstanceUID")
        note = notes.get(sop)
        instances.append(
            Instance(
                sop_class_uid=to_uid(ds.get("SOPClassUID"), f"instance {sop} SOPClassUID"),
                sop_instance_uid=sop,
                number=to_int(ds.get("InstanceNumber")),
                frames=to_int(ds.get("NumberOfFrames")),
                key_object=KeyObjectSummary(title=note.title, description=note.description)
                if note
                else None,
                flagged_by=tuple(flags.get(sop, ())),
                key_description=descriptions.get(sop),
            )
        )
    return Series(
        uid=to_uid(uid, "SeriesInstanceUID"),
        modality=to_text(first.get("Modality")),
        description=to_text(first.get("SeriesDescription")),
        number=to_int(first.get("SeriesNumber")),
        date=to_dicom_date(first.get("SeriesDate")),
        time=to_dicom_time(first.get("SeriesTime")),
        body_site=_body_site(first),
        retrieve_location_uid=location.retrieve_location_uid,
        retrieve_url=to_url(location.retrieve_url),
        instances=tuple(instances),
    )


def _body_site(first: Dataset) -> Code | None:
    """The series' body site: its one high-level region, when its body part has exactly one."""
    regions = regions_of(to_text(first.get("BodyPartExamined")))
    return regions[0] if len(regions) == 1 else None
