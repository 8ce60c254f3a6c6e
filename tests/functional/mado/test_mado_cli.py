"""``mado-gateway manifest validate|convert|create`` through the registered subcommands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import orjson
import pydicom
import pytest

from mado.cli import add_commands
from tests.functional.mado.conftest import build_study_metadata


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="mado-gateway")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    status = args.run(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def test_validate_kos_sample_text(
    kos_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["manifest", "validate", str(kos_sample_path)], capsys)
    assert status == 1  # the Image Library container lacks Continuity of Content
    assert "ReferencedSeriesSequence[0].Modality (0008,0060)" in out


def test_validate_json(kos_sample_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(["manifest", "validate", str(kos_sample_path), "--format", "json"], capsys)
    report = json.loads(out)
    assert status == 1
    assert report["errors"] == 1 and report["warnings"] == 2
    assert {f["severity"] for f in report["findings"]} == {"error", "warning"}


def test_validate_conformant_manifest_exits_zero(
    tmp_path: Path, study_metadata: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    metadata = tmp_path / "study.json"
    metadata.write_bytes(orjson.dumps(study_metadata[0]))
    out_path = tmp_path / "m.dcm"
    status, out, _ = run(
        [
            "manifest",
            "create",
            "--metadata",
            str(metadata),
            "--retrieve-location-uid",
            "oid:1.2.3.4",
            "--retrieve-url",
            "https://pacs.example/rs/",
            "--institution",
            "Example",
            "--out",
            str(out_path),
        ],
        capsys,
    )
    assert status == 0
    assert "3 series, 7 instances" in out
    status, out, _ = run(["manifest", "validate", str(out_path)], capsys)
    assert status == 0, out
    assert "conformant, 0 error(s)" in out


def test_convert_kos_to_fhir_and_back(
    tmp_path: Path, kos_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = tmp_path / "m.json"
    status, out, _ = run(
        ["manifest", "convert", str(kos_sample_path), "--to", "fhir", "--out", str(bundle)], capsys
    )
    assert status == 0
    assert "2 series, 86 instances" in out
    assert orjson.loads(bundle.read_bytes())["resourceType"] == "Bundle"
    kos = tmp_path / "m.dcm"
    status, _, _ = run(
        ["manifest", "convert", str(bundle), "--to", "kos", "--out", str(kos)], capsys
    )
    assert status == 0
    ds = pydicom.dcmread(kos)
    series = ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert [s.RetrieveLocationUID for s in series] == [
        "1.3.6.1.4.1.19376.1.1.200.1",
        "1.3.6.1.4.1.19376.1.1.200.2",
    ]


def test_convert_fhir_sample_notes_the_non_oid(
    tmp_path: Path, fhir_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(
        [
            "manifest",
            "convert",
            str(fhir_sample_path),
            "--to",
            "kos",
            "--out",
            str(tmp_path / "k.dcm"),
        ],
        capsys,
    )
    assert status == 0
    assert "'ACME' is not an OID" in err


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status, _, err = run(argv, capsys)
    assert status == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_truncated_file(
    tmp_path: Path, kos_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(kos_sample_path.read_bytes()[:3000])
    assert "truncated DICOM file" in _one_line_error(["manifest", "validate", str(cut)], capsys)


def test_not_a_kos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4"
    ct = tmp_path / "ct.dcm"
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(ct, enforce_file_format=True)
    line = _one_line_error(
        ["manifest", "convert", str(ct), "--to", "fhir", "--out", str(tmp_path / "x")], capsys
    )
    assert "not a Key Object Selection document" in line


def test_bundle_without_imaging_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "document", "entry": []}')
    assert "no ImagingStudy" in _one_line_error(["manifest", "validate", str(bundle)], capsys)


def test_invalid_uid_in_manifest(
    tmp_path: Path, kos_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = pydicom.dcmread(kos_sample_path)
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):
        ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[
            1
        ].SeriesInstanceUID = "1.2.03"
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    line = _one_line_error(
        ["manifest", "convert", str(bad), "--to", "fhir", "--out", str(tmp_path / "x")], capsys
    )
    assert "ReferencedSeriesSequence[1].SeriesInstanceUID (0020,000E): invalid UID '1.2.03'" in line


def test_invalid_uid_is_a_validation_error(
    tmp_path: Path, kos_sample_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = pydicom.dcmread(kos_sample_path)
    with pytest.warns(UserWarning, match="Invalid value for VR UI"):
        ds.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[
            1
        ].SeriesInstanceUID = "1.2.03"
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    status, out, _ = run(["manifest", "validate", str(bad)], capsys)
    assert status == 1
    assert "invalid UID '1.2.03'" in out


def test_invalid_retrieve_location_uid_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_line_error(
        [
            "manifest",
            "create",
            "--metadata",
            str(tmp_path / "m.json"),
            "--retrieve-location-uid",
            "ACME",
            "--out",
            str(tmp_path / "o.dcm"),
        ],
        capsys,
    )
    assert "--retrieve-location-uid" in line and "ACME" in line


def test_missing_file_and_bad_metadata(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "cannot read" in _one_line_error(
        ["manifest", "validate", str(tmp_path / "none.dcm")], capsys
    )
    metadata = tmp_path / "m.json"
    metadata.write_text('{"not": "a list"}')
    line = _one_line_error(
        [
            "manifest",
            "create",
            "--metadata",
            str(metadata),
            "--retrieve-location-uid",
            "1.2.3",
            "--out",
            str(tmp_path / "o.dcm"),
        ],
        capsys,
    )
    assert "non-empty JSON array" in line


def test_create_never_writes_what_validate_rejects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, class 6: metadata without an Institution Name and no --institution is a
    message, not a manifest that validate then rejects; with the name in the metadata, the
    created manifest validates."""
    metadata, _ = build_study_metadata()
    for instance in metadata:
        instance["00180015"] = {"vr": "CS", "Value": ["HEAD"]}
    source = tmp_path / "metadata.json"
    source.write_bytes(orjson.dumps(metadata))
    out = tmp_path / "manifest.dcm"
    command = ["manifest", "create", "--metadata", str(source)]
    command += ["--retrieve-location-uid", "1.2.3.4", "--out", str(out)]
    line = _one_line_error(command, capsys)
    assert "InstitutionName" in line and "--institution" in line
    assert not out.exists()
    for instance in metadata:
        instance["00080080"] = {"vr": "LO", "Value": ["Example Hospital"]}
    source.write_bytes(orjson.dumps(metadata))
    status, _, _ = run(command, capsys)
    assert status == 0
    status, report, _ = run(["manifest", "validate", str(out)], capsys)
    assert status == 0, report
