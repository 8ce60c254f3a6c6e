"""The validation report: MADO content requirements with path, rule and severity."""

from __future__ import annotations

import io

import pydicom
import pytest

from mado.kos_reader import read_kos
from mado.kos_writer import write_kos
from mado.report import Severity
from mado.validate import validate_bytes
from tests.samples import fhir_sample, kos_sample

SERIES0 = "CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]"


def _bytes(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _rewritten() -> pydicom.Dataset:
    manifest, _ = read_kos(pydicom.dcmread(kos_sample()))
    return write_kos(manifest)


def test_kos_sample_report_names_the_missing_series_modality() -> None:
    report = validate_bytes(kos_sample().read_bytes(), "MADO_KOS_A.dcm")
    modality = [f for f in report.findings if f.path.endswith("Modality (0008,0060)")]
    assert [f.path for f in modality] == [
        f"{SERIES0}.Modality (0008,0060)",
        f"{SERIES0[:-3]}[1].Modality (0008,0060)",
    ]
    assert all(f.rule == "R+" and f.severity is Severity.WARNING for f in modality)
    assert "'CT'" in modality[0].message


def test_kos_sample_image_library_lacks_continuity_of_content() -> None:
    report = validate_bytes(kos_sample().read_bytes(), "MADO_KOS_A.dcm")
    assert [f.path for f in report.errors] == ["ContentSequence[0].ContinuityOfContent (0040,A050)"]


def test_fhir_sample_report_flags_the_non_oid_rluid() -> None:
    report = validate_bytes(fhir_sample().read_bytes(), "bundle.json")
    assert not report.ok
    assert {f.rule for f in report.errors} == {"1..1 OID"}
    assert report.as_dict()["errors"] == 2


def test_rewritten_sample_is_conformant() -> None:
    report = validate_bytes(_bytes(_rewritten()), "x.dcm")
    assert report.ok, report.as_text()
    assert report.findings == ()


def test_series_modality_absent_everywhere_is_an_error() -> None:
    ds = _rewritten()
    del ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].Modality
    library = ds.ContentSequence[0]
    group = library.ContentSequence[-2]
    group.ContentSequence = [
        i
        for i in group.ContentSequence
        if i.get("ConceptNameCodeSequence") is None
        or i.ConceptNameCodeSequence[0].CodeValue != "121139"
    ]
    report = validate_bytes(_bytes(ds), "x.dcm")
    assert f"{SERIES0}.Modality (0008,0060)" in [f.path for f in report.errors]


@pytest.mark.parametrize(
    ("keyword", "path"),
    [
        ("TimezoneOffsetFromUTC", "TimezoneOffsetFromUTC (0008,0201)"),
        ("Manufacturer", "Manufacturer (0008,0070)"),
        ("OtherPatientIDsSequence", "OtherPatientIDsSequence (0010,1002)"),
        ("ReferencedRequestSequence", "ReferencedRequestSequence (0040,A370)"),
        ("StudyTime", "StudyTime (0008,0030)"),
    ],
)
def test_missing_r_plus_attribute_is_an_error(keyword: str, path: str) -> None:
    ds = _rewritten()
    delattr(ds, keyword)
    report = validate_bytes(_bytes(ds), "x.dcm")
    finding = next(f for f in report.errors if f.path == path)
    assert finding.rule in {"R+", "R"}
    assert finding.section.startswith("MADO Rev 1.1 §6.X.2")


def test_missing_retrieve_location_uid_is_an_error() -> None:
    ds = _rewritten()
    del (
        ds.CurrentRequestedProcedureEvidenceSequence[0]
        .ReferencedSeriesSequence[1]
        .RetrieveLocationUID
    )
    report = validate_bytes(_bytes(ds), "x.dcm")
    assert any(
        f.path.endswith("[1].RetrieveLocationUID (0040,E011)") and f.rule == "R+"
        for f in report.errors
    )


def test_wrong_document_title_is_an_error() -> None:
    ds = _rewritten()
    ds.ConceptNameCodeSequence[0].CodeValue = "113000"
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Of Interest"
    report = validate_bytes(_bytes(ds), "x.dcm")
    title = next(f for f in report.errors if f.path.startswith("ConceptNameCodeSequence"))
    assert "113030" in title.message and title.rule == "fixed value"


def test_dicom_title_113030_is_accepted() -> None:
    ds = _rewritten()
    ds.ConceptNameCodeSequence[0].CodeValue = "113030"
    ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "DCM"
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Manifest"
    assert validate_bytes(_bytes(ds), "x.dcm").ok


def test_second_study_is_an_error_finding_not_an_exception() -> None:
    ds = _rewritten()
    evidence = ds.CurrentRequestedProcedureEvidenceSequence
    other = pydicom.Dataset()
    other.StudyInstanceUID = "1.2.3.4"
    other.ReferencedSeriesSequence = evidence[0].ReferencedSeriesSequence
    evidence.append(other)
    report = validate_bytes(_bytes(ds), "x.dcm")
    assert any(f.rule == "one study" for f in report.errors)
    assert any("exactly one study" in f.message for f in report.errors)


def test_text_and_json_forms() -> None:
    report = validate_bytes(kos_sample().read_bytes(), "MADO_KOS_A.dcm")
    assert (
        report.as_text().splitlines()[0]
        == "MADO_KOS_A.dcm (kos): NOT conformant, 1 error(s), 2 warning(s)"
    )
    first = report.as_dict()["findings"][0]  # type: ignore[index]
    assert set(first) == {"severity", "path", "rule", "message", "section"}
