"""Write the manifest model as a DICOM KOS-based MADO manifest (pydicom dataset).

The inverse of :mod:`mado.kos_reader`. Each value is written where MADO Rev 1.1 §6.X.2 puts
it, and also where the Rev 0.6 draft (Table 7.3.3.5.2-1) put it when that location is an
attribute a consumer reads without walking the SR tree: series Modality, Description, Date and
Time in the Referenced Series Sequence; Instance Number, Number of Frames, and the key-image
extension (Related Series Sequence with Purpose of Reference, Key Object Description in a
Content Sequence item) in each Referenced SOP Sequence item.

SR content: TID 2010 at the root with the TID 1600 Image Library (one Image Library Group per
series, TID 1602 descriptors, one TID 1601 entry per instance with its descriptors nested,
TID 16XX title and description for KOS/KIN instances), then one CONTAINS reference per
instance. The Key Object Selection IOD before DICOM CP-2595 only allows the value types
CONTAINER, TEXT, CODE, UIDREF, IMAGE, COMPOSITE and WAVEFORM; by default the DATE, TIME and
NUM descriptors of §6.X.2.9 are therefore written as TEXT (``cp2595_value_types=False``),
which keeps dciodvfy free of errors. ``cp2595_value_types=True`` writes the template value
types, as the IHE sample does. See docs/manifests.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from mado.model import Code, Identifier, Instance, Manifest, Series
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
    CODE_SERIES_RELATED_INSTANCES,
    CODE_SERIES_TIME,
    CODE_STUDY_RELATED_SERIES,
    CODE_TARGET_REGION,
    DISPLAY_URI_ELEMENT,
    DISPLAY_URI_GROUP,
    DISPLAY_URI_PRIVATE_CREATOR,
    KOS_SOP_CLASS_UID,
    TITLE_MANIFEST_WITH_DESCRIPTION,
)

__all__ = ["code_item", "value_type_for", "write_kos"]

_ACQ = "HAS ACQ CONTEXT"
# Root prefix for UIDs this package generates (pydicom's registered prefix).
_UID_PREFIX = "1.2.826.0.1.3680043.8.498."


def code_item(code: Code) -> Dataset:
    """A Basic Code Sequence item for ``code``."""
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


def value_type_for(sop_class_uid: str) -> str:
    """The TID 2010 reference value type for a SOP class: IMAGE, WAVEFORM or COMPOSITE."""
    name = UID(sop_class_uid).name
    if "Waveform" in name or "ECG" in name:
        return "WAVEFORM"
    if "Image" in name and "Presentation State" not in name:
        return "IMAGE"
    return "COMPOSITE"


def write_kos(
    manifest: Manifest,
    *,
    now: datetime | None = None,
    title: Code | None = None,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int = 59,
    cp2595_value_types: bool = False,
) -> Dataset:
    """A KOS manifest dataset (with file meta) for ``manifest``.

    ``title`` defaults to the manifest's own, else Rev 1.1's (MADOTEMP001, 99IHE, "Manifest
    with Description"); the manifest SOP Instance UID is kept when it has one. Series number 59
    is the Rev 0.6 recommendation for the manifest series.
    """
    stamp = now or datetime.now().astimezone()
    sop_uid = sop_instance_uid or manifest.sop_instance_uid or generate_uid(prefix=_UID_PREFIX)
    ds = Dataset()
    ds.file_meta = _file_meta(sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.InstanceCreationDate = stamp.strftime("%Y%m%d")
    ds.InstanceCreationTime = stamp.strftime("%H%M%S")
    ds.SOPClassUID = KOS_SOP_CLASS_UID
    ds.SOPInstanceUID = sop_uid
    _patient(ds, manifest)
    _study(ds, manifest)
    ds.Modality = "KO"
    ds.SeriesInstanceUID = series_instance_uid or generate_uid(prefix=_UID_PREFIX)
    ds.SeriesNumber = series_number
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.Manufacturer = manifest.creator.manufacturer or ""
    if manifest.creator.institution:
        ds.InstitutionName = manifest.creator.institution
    if manifest.creator.timezone_offset:
        ds.TimezoneOffsetFromUTC = manifest.creator.timezone_offset
    ds.InstanceNumber = 1
    ds.ContentDate = stamp.strftime("%Y%m%d")
    ds.ContentTime = stamp.strftime("%H%M%S")
    ds.ReferencedRequestSequence = Sequence(_request_items(manifest))
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([_evidence(manifest)])
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence(
        [code_item(title or manifest.title or TITLE_MANIFEST_WITH_DESCRIPTION)]
    )
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = Sequence([template])
    ds.ContentSequence = Sequence(
        [_image_library(manifest, cp2595_value_types), *_references(manifest)]
    )
    return ds


def _file_meta(sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(KOS_SOP_CLASS_UID)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _issuer_item(ident: Identifier) -> Dataset | None:
    if not ident.authority:
        return None
    item = Dataset()
    item.UniversalEntityID = ident.authority
    item.UniversalEntityIDType = ident.authority_type or "ISO"
    return item


def _patient(ds: Dataset, manifest: Manifest) -> None:
    patient = manifest.patient
    ds.PatientName = patient.name or ""
    ds.PatientID = patient.id.value if patient.id else ""
    if patient.id and patient.id.issuer:
        ds.IssuerOfPatientID = patient.id.issuer
    if patient.id and (issuer := _issuer_item(patient.id)):
        ds.IssuerOfPatientIDQualifiersSequence = Sequence([issuer])
    ds.PatientBirthDate = patient.birth_date or ""
    ds.PatientSex = patient.sex or ""
    others = []
    for other in patient.other_ids:
        item = Dataset()
        item.PatientID = other.value
        if other.issuer:
            item.IssuerOfPatientID = other.issuer
        item.TypeOfPatientID = "TEXT"
        if issuer := _issuer_item(other):
            item.IssuerOfPatientIDQualifiersSequence = Sequence([issuer])
        others.append(item)
    if others:
        ds.OtherPatientIDsSequence = Sequence(others)


def _study(ds: Dataset, manifest: Manifest) -> None:
    study = manifest.study
    ds.StudyInstanceUID = study.uid
    ds.StudyDate = study.date or ""
    ds.StudyTime = study.time or ""
    ds.ReferringPhysicianName = ""
    ds.StudyID = ""
    ds.AccessionNumber = study.accession.value if study.accession else ""
    if study.accession and (issuer := _issuer_item(study.accession)):
        ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    if study.description:
        ds.StudyDescription = study.description


def _request_items(manifest: Manifest) -> Iterable[Dataset]:
    for request in manifest.study.requests:
        item = Dataset()
        item.StudyInstanceUID = manifest.study.uid
        item.ReferencedStudySequence = Sequence()
        item.AccessionNumber = request.accession.value if request.accession else ""
        if request.accession and (issuer := _issuer_item(request.accession)):
            item.IssuerOfAccessionNumberSequence = Sequence([issuer])
        item.PlacerOrderNumberImagingServiceRequest = (
            request.placer_order.value if request.placer_order else ""
        )
        if request.placer_order and (issuer := _issuer_item(request.placer_order)):
            item.OrderPlacerIdentifierSequence = Sequence([issuer])
        item.FillerOrderNumberImagingServiceRequest = ""
        item.RequestedProcedureID = ""
        item.RequestedProcedureDescription = ""
        item.RequestedProcedureCodeSequence = Sequence()
        yield item


def _evidence(manifest: Manifest) -> Dataset:
    item = Dataset()
    item.StudyInstanceUID = manifest.study.uid
    if manifest.study.viewer_url:
        block = item.private_block(DISPLAY_URI_GROUP, DISPLAY_URI_PRIVATE_CREATOR, create=True)
        block.add_new(DISPLAY_URI_ELEMENT, "UR", manifest.study.viewer_url)
    item.ReferencedSeriesSequence = Sequence([_series_item(s) for s in manifest.series])
    return item


def _series_item(series: Series) -> Dataset:
    item = Dataset()
    if series.date:
        item.SeriesDate = series.date
    if series.time:
        item.SeriesTime = series.time
    if series.modality:
        item.Modality = series.modality
    if series.description:
        item.SeriesDescription = series.description
    item.SeriesInstanceUID = series.uid
    if series.retrieve_location_uid:
        item.RetrieveLocationUID = series.retrieve_location_uid
    if series.retrieve_url:
        item.RetrieveURL = series.retrieve_url
    item.ReferencedSOPSequence = Sequence([_sop_item(i) for i in series.instances])
    return item


def _sop_item(instance: Instance) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = instance.sop_class_uid
    item.ReferencedSOPInstanceUID = instance.sop_instance_uid
    if instance.number is not None:
        item.InstanceNumber = instance.number
    if instance.frames is not None:
        item.NumberOfFrames = instance.frames
    related: dict[str, list[Dataset]] = {}
    for flag in instance.flagged_by:
        ref = Dataset()
        ref.ReferencedSOPClassUID = flag.sop_class_uid
        ref.ReferencedSOPInstanceUID = flag.sop_instance_uid
        ref.PurposeOfReferenceCodeSequence = Sequence([code_item(flag.purpose)])
        related.setdefault(flag.series_uid, []).append(ref)
    if related:
        items = []
        for series_uid, refs in related.items():
            group = Dataset()
            group.SeriesInstanceUID = series_uid
            group.ReferencedSOPSequence = Sequence(refs)
            items.append(group)
        item.RelatedSeriesSequence = Sequence(items)
    if instance.key_description:
        text = Dataset()
        text.TextValue = instance.key_description
        item.ContentSequence = Sequence([text])
    return item


def _content(concept: Code, value_type: str, relationship: str = _ACQ) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([code_item(concept)])
    return item


def _text(concept: Code, value: str) -> Dataset:
    item = _content(concept, "TEXT")
    item.TextValue = value
    return item


def _coded(concept: Code, value: Code) -> Dataset:
    item = _content(concept, "CODE")
    item.ConceptCodeSequence = Sequence([code_item(value)])
    return item


def _number(concept: Code, value: int, unit: Code, strict: bool) -> Dataset:
    if not strict:
        return _text(concept, str(value))
    item = _content(concept, "NUM")
    measured = Dataset()
    measured.MeasurementUnitsCodeSequence = Sequence([code_item(unit)])
    measured.NumericValue = str(value)
    item.MeasuredValueSequence = Sequence([measured])
    return item


def _date(concept: Code, value: str, strict: bool) -> Dataset:
    if not strict:
        return _text(concept, value)
    item = _content(concept, "DATE")
    item.Date = value
    return item


def _time(concept: Code, value: str, strict: bool) -> Dataset:
    if not strict:
        return _text(concept, value)
    item = _content(concept, "TIME")
    item.Time = value
    return item


def _modality_code(modality: str) -> Code:
    return Code(value=modality, scheme="DCM", meaning=modality)


def _image_library(manifest: Manifest, strict: bool) -> Dataset:
    library = _content(CODE_IMAGE_LIBRARY, "CONTAINER", "CONTAINS")
    library.ContinuityOfContent = "SEPARATE"
    children = [_coded(CODE_MODALITY, _modality_code(m)) for m in manifest.modalities]
    children += [_coded(CODE_TARGET_REGION, region) for region in manifest.study.target_regions]
    series_unit = Code(value="{series}", scheme="UCUM", meaning="series")
    children.append(_number(CODE_STUDY_RELATED_SERIES, len(manifest.series), series_unit, strict))
    children += [_group(series, strict) for series in manifest.series]
    library.ContentSequence = Sequence(children)
    return library


def _group(series: Series, strict: bool) -> Dataset:
    group = _content(CODE_IMAGE_LIBRARY_GROUP, "CONTAINER", "CONTAINS")
    group.ContinuityOfContent = "SEPARATE"
    items: list[Dataset] = []
    if series.modality:
        items.append(_coded(CODE_MODALITY, _modality_code(series.modality)))
    if series.date:
        items.append(_date(CODE_SERIES_DATE, series.date, strict))
    if series.time:
        items.append(_time(CODE_SERIES_TIME, series.time, strict))
    if series.description:
        items.append(_text(CODE_SERIES_DESCRIPTION, series.description))
    if series.number is not None:
        items.append(_text(CODE_SERIES_NUMBER, str(series.number)))
    if series.body_site:
        items.append(_coded(CODE_TARGET_REGION, series.body_site))
    uid = _content(CODE_SERIES_INSTANCE_UID, "UIDREF")
    uid.UID = series.uid
    items.append(uid)
    items.append(_text(CODE_SERIES_RELATED_INSTANCES, str(len(series.instances))))
    items += [_entry(instance, strict) for instance in series.instances]
    group.ContentSequence = Sequence(items)
    return group


def _entry(instance: Instance, strict: bool) -> Dataset:
    entry = _reference(instance, "CONTAINS")
    descriptors: list[Dataset] = []
    if instance.frames is not None:
        unit = Code(value="{frames}", scheme="UCUM", meaning="frames")
        descriptors.append(_number(CODE_NUMBER_OF_FRAMES, instance.frames, unit, strict))
    if instance.number is not None:
        descriptors.append(_text(CODE_INSTANCE_NUMBER, str(instance.number)))
    if instance.key_object:
        descriptors.append(_coded(CODE_DOCUMENT_TITLE, instance.key_object.title))
        if instance.key_object.description:
            descriptors.append(_text(CODE_KEY_OBJECT_DESCRIPTION, instance.key_object.description))
    if descriptors:
        entry.ContentSequence = Sequence(descriptors)
    return entry


def _reference(instance: Instance, relationship: str) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type_for(instance.sop_class_uid)
    ref = Dataset()
    ref.ReferencedSOPClassUID = instance.sop_class_uid
    ref.ReferencedSOPInstanceUID = instance.sop_instance_uid
    item.ReferencedSOPSequence = Sequence([ref])
    return item


def _references(manifest: Manifest) -> Iterable[Dataset]:
    for _, instance in manifest.instances():
        yield _reference(instance, "CONTAINS")
