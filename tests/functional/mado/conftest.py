"""A synthetic study as WADO-RS metadata (DICOM JSON), built with pydicom for the tests."""

from __future__ import annotations

from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.samples import fhir_sample, kos_sample

STUDY = "1.2.826.0.1.3680043.8.498.100"
CT_SERIES = f"{STUDY}.1"
MR_SERIES = f"{STUDY}.2"
KO_SERIES = f"{STUDY}.3"
KIN_UID = f"{KO_SERIES}.1"
CT = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
KOS = "1.2.840.10008.5.1.4.1.1.88.59"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _common(series: str, sop_class: str, sop: str, modality: str, number: int) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = series
    ds.Modality = modality
    ds.InstanceNumber = number
    ds.PatientName = "DOE^Jane"
    ds.PatientID = "P123"
    ds.IssuerOfPatientID = "HOSP"
    issuer = Dataset()
    issuer.UniversalEntityID = "1.2.826.0.1.3680043.8.498.1"
    issuer.UniversalEntityIDType = "ISO"
    ds.IssuerOfPatientIDQualifiersSequence = [issuer]
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "F"
    ds.StudyDate = "20260110"
    ds.StudyTime = "101500"
    ds.StudyDescription = "CT and MR"
    ds.AccessionNumber = "ACC1"
    acc_issuer = Dataset()
    acc_issuer.UniversalEntityID = "1.2.826.0.1.3680043.8.498.2"
    acc_issuer.UniversalEntityIDType = "ISO"
    ds.IssuerOfAccessionNumberSequence = [acc_issuer]
    request = Dataset()
    request.AccessionNumber = "ACC1"
    request.IssuerOfAccessionNumberSequence = [acc_issuer]
    request.PlacerOrderNumberImagingServiceRequest = "ORD7"
    placer_issuer = Dataset()
    placer_issuer.UniversalEntityID = "1.2.826.0.1.3680043.8.498.3"
    placer_issuer.UniversalEntityIDType = "ISO"
    request.OrderPlacerIdentifierSequence = [placer_issuer]
    ds.RequestAttributesSequence = [request]
    ds.TimezoneOffsetFromUTC = "+0100"
    ds.SeriesNumber = {"CT": 1, "MR": 2, "KO": 3}[modality]
    ds.SeriesDate = "20260110"
    ds.SeriesTime = "102000"
    return ds


def _kin(flagged: list[tuple[str, str, str]]) -> Dataset:
    ds = _common(KO_SERIES, KOS, KIN_UID, "KO", 1)
    ds.SeriesDescription = "Key images"
    ds.ConceptNameCodeSequence = [_code("113000", "DCM", "Of Interest")]
    ds.ValueType = "CONTAINER"
    description = Dataset()
    description.RelationshipType = "CONTAINS"
    description.ValueType = "TEXT"
    description.ConceptNameCodeSequence = [_code("113012", "DCM", "Key Object Description")]
    description.TextValue = "Lesion near the spine"
    images = []
    by_series: dict[str, list[Dataset]] = {}
    for series, sop_class, sop in flagged:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = sop_class, sop
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "IMAGE"
        item.ReferencedSOPSequence = [ref]
        images.append(item)
        by_series.setdefault(series, []).append(ref)
    ds.ContentSequence = [description, *images]
    evidence = Dataset()
    evidence.StudyInstanceUID = STUDY
    evidence.ReferencedSeriesSequence = []
    for series, refs in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = series
        item.ReferencedSOPSequence = refs
        evidence.ReferencedSeriesSequence.append(item)
    ds.CurrentRequestedProcedureEvidenceSequence = [evidence]
    return ds


def build_study_metadata(with_kin: bool = True) -> tuple[list[dict[str, Any]], set[str]]:
    """(WADO-RS metadata, SOP Instance UIDs the Key Image Note flags)."""
    datasets = [_common(CT_SERIES, CT, f"{CT_SERIES}.{n}", "CT", n) for n in range(1, 6)]
    for ds in datasets:
        ds.SeriesDescription = "Chest"
        ds.BodyPartExamined = "UPPERTRUNK"
    mr = _common(MR_SERIES, ENHANCED_MR, f"{MR_SERIES}.1", "MR", 1)
    mr.NumberOfFrames = 40
    datasets.append(mr)
    flagged = [(CT_SERIES, CT, f"{CT_SERIES}.2"), (CT_SERIES, CT, f"{CT_SERIES}.4")]
    if with_kin:
        datasets.append(_kin(flagged))
    return [ds.to_json_dict() for ds in datasets], (
        {sop for _, _, sop in flagged} if with_kin else set()
    )


@pytest.fixture
def study_metadata() -> tuple[list[dict[str, Any]], set[str]]:
    return build_study_metadata()


@pytest.fixture
def study_metadata_without_kin() -> tuple[list[dict[str, Any]], set[str]]:
    return build_study_metadata(with_kin=False)


@pytest.fixture
def kos_sample_path() -> Any:
    return kos_sample()


@pytest.fixture
def fhir_sample_path() -> Any:
    return fhir_sample()


__all__ = ["build_study_metadata", "pydicom"]
