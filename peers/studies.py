"""Synthetic DICOM studies made with pydicom, for loading into Orthanc.

UIDs are derived from a seed (``2.25.`` UUID-style UIDs, PS3.5 §B.2), so a given seed always
yields the same study, and pixel data is pseudo-random so no two instances share bytes.
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from dataclasses import dataclass

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, RLELossless

__all__ = [
    "SyntheticInstance",
    "SyntheticStudy",
    "compress_rle",
    "make_key_image_note",
    "make_study",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticInstance:
    series_uid: str
    sop_instance_uid: str
    sop_class_uid: str
    part10: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class SyntheticStudy:
    study_uid: str
    patient_id: str
    instances: tuple[SyntheticInstance, ...]

    @property
    def series_uids(self) -> list[str]:
        return list(dict.fromkeys(i.series_uid for i in self.instances))

    def of_series(self, series_uid: str) -> list[SyntheticInstance]:
        return [i for i in self.instances if i.series_uid == series_uid]


def make_study(
    *,
    seed: str = "mado-demo",
    patient_id: str = "MADO-0001",
    issuer: str = "1.2.826.0.1.3680043.10.1234",
    series_count: int = 2,
    instances_per_series: int = 100,
    rows: int = 128,
    columns: int = 128,
) -> SyntheticStudy:
    """A CT study with ``series_count`` series of ``instances_per_series`` instances each."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test pixels, not secrets
    study_uid = _uid(seed, "study")
    instances = []
    for s in range(series_count):
        series_uid = _uid(seed, f"series-{s}")
        for n in range(instances_per_series):
            ds = _instance(study_uid, series_uid, _uid(seed, f"sop-{s}-{n}"), n + 1)
            ds.PatientID = patient_id
            ds.IssuerOfPatientID = issuer
            ds.SeriesNumber = s + 1
            ds.Rows, ds.Columns = rows, columns
            ds.PixelData = rng.randbytes(rows * columns * 2)
            instances.append(
                SyntheticInstance(
                    series_uid=series_uid,
                    sop_instance_uid=ds.SOPInstanceUID,
                    sop_class_uid=ds.SOPClassUID,
                    part10=_part10(ds),
                )
            )
    return SyntheticStudy(study_uid=study_uid, patient_id=patient_id, instances=tuple(instances))


def compress_rle(instance: SyntheticInstance) -> SyntheticInstance:
    """The same instance stored RLE Lossless (1.2.840.10008.1.2.5), encoded by pydicom itself
    (its RLE encoder needs no third-party codec): a compressed object as a PACS keeps it."""
    ds = dcmread(io.BytesIO(instance.part10))
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return SyntheticInstance(
        series_uid=instance.series_uid,
        sop_instance_uid=instance.sop_instance_uid,
        sop_class_uid=instance.sop_class_uid,
        part10=_part10(ds),
    )


def _uid(seed: str, name: str) -> str:
    """``2.25.`` and a 128-bit value taken from the seed and name (PS3.5 §B.2).

    Not pydicom's ``generate_uid``: without a prefix it ignores its entropy sources and
    returns a random UUID, and the harness needs the same UIDs for the same seed.
    """
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return f"2.25.{uuid.UUID(bytes=digest[:16], version=4).int}"


def _instance(study_uid: str, series_uid: str, sop_uid: str, number: int) -> Dataset:
    ds = _object(CTImageStorage, sop_uid, study_uid, series_uid)
    ds.InstanceNumber = number
    ds.Modality = "CT"
    ds.Manufacturer = "mado-gateway test harness"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    return ds


def _object(sop_class: str, sop_uid: str, study_uid: str, series_uid: str) -> Dataset:
    """A Part 10 dataset with the patient and study attributes every harness object shares."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = "Demo^Patient"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "ACC0001"
    ds.StudyID = "1"
    return ds


def _part10(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_key_image_note(
    study: SyntheticStudy,
    flagged: list[SyntheticInstance],
    *,
    seed: str = "kin",
    description: str = "Lesion, see report",
) -> SyntheticInstance:
    """A Key Object Selection document titled (113000, DCM, "Of Interest") referencing
    ``flagged`` — a Key Image Note as a modality or a reading workstation makes one
    (PS3.3 A.35.4, TID 2010)."""
    series_uid = _uid(seed, "kin-series")
    sop_uid = _uid(seed, "kin-sop")
    kos = "1.2.840.10008.5.1.4.1.1.88.59"
    ds = _object(kos, sop_uid, study.study_uid, series_uid)
    ds.PatientID = study.patient_id
    ds.ReferringPhysicianName = ""
    ds.Modality = "KO"
    ds.SeriesNumber = 99
    ds.InstanceNumber = 1
    ds.Manufacturer = "mado-gateway test harness"
    ds.ContentDate = "20260101"
    ds.ContentTime = "121000"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.ConceptNameCodeSequence = [_code("113000", "DCM", "Of Interest")]
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = [template]
    ds.ReferencedPerformedProcedureStepSequence = []
    ds.ContentSequence = _kin_content(flagged, description)
    ds.CurrentRequestedProcedureEvidenceSequence = [_evidence(study.study_uid, flagged)]
    return SyntheticInstance(
        series_uid=series_uid, sop_instance_uid=sop_uid, sop_class_uid=kos, part10=_part10(ds)
    )


def _kin_content(flagged: list[SyntheticInstance], description: str) -> list[Dataset]:
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.ConceptNameCodeSequence = [_code("113012", "DCM", "Key Object Description")]
    text.TextValue = description
    content = [text]
    for instance in flagged:
        item = Dataset()
        item.RelationshipType = "CONTAINS"
        item.ValueType = "IMAGE"
        item.ReferencedSOPSequence = [_reference(instance)]
        content.append(item)
    return content


def _evidence(study_uid: str, flagged: list[SyntheticInstance]) -> Dataset:
    evidence = Dataset()
    evidence.StudyInstanceUID = study_uid
    evidence.ReferencedSeriesSequence = []
    for series in dict.fromkeys(i.series_uid for i in flagged):
        entry = Dataset()
        entry.SeriesInstanceUID = series
        entry.ReferencedSOPSequence = [_reference(i) for i in flagged if i.series_uid == series]
        evidence.ReferencedSeriesSequence.append(entry)
    return evidence


def _reference(instance: SyntheticInstance) -> Dataset:
    reference = Dataset()
    reference.ReferencedSOPClassUID = instance.sop_class_uid
    reference.ReferencedSOPInstanceUID = instance.sop_instance_uid
    return reference


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    code = Dataset()
    code.CodeValue = value
    code.CodingSchemeDesignator = scheme
    code.CodeMeaning = meaning
    return code
