"""Content Creator: a MADO KOS from WADO-RS metadata passes dciodvfy and flags the key images."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pydicom
import pytest

from mado.create import SeriesLocation, create_kos
from mado.errors import CreationError
from mado.kos_reader import read_kos
from mado.plan import plan_key_images
from mado.validate import validate_bytes
from routing.ids import Oid

DCIODVFY = shutil.which("dciodvfy") or "/usr/bin/dciodvfy"
LOCATION = SeriesLocation(
    retrieve_location_uid=Oid("urn:oid:1.3.6.1.4.1.19376.1.1.200.9"),
    retrieve_url="https://pacs.example.org/dicom-web/",
)


def _create(tmp_path: Path, metadata: list[dict[str, Any]]) -> Path:
    ds = create_kos(metadata, LOCATION, institution="Example Hospital")
    path = tmp_path / "manifest.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _dciodvfy(path: Path) -> list[str]:
    result = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).splitlines()


def test_created_manifest_passes_dciodvfy_without_errors(
    tmp_path: Path, study_metadata: Any
) -> None:
    lines = _dciodvfy(_create(tmp_path, study_metadata[0]))
    assert any("KeyObjectSelectionDocument" in line for line in lines)
    assert [line for line in lines if line.startswith("Error")] == []
    # The MADO extensions are reported as warnings only (documented in docs/manifests.md).
    assert any("Attribute is not present in standard DICOM IOD" in line for line in lines)


def test_created_manifest_flags_exactly_the_key_image_note_references(
    tmp_path: Path, study_metadata: Any
) -> None:
    metadata, flagged = study_metadata
    manifest, notes = read_kos(pydicom.dcmread(_create(tmp_path, metadata)))
    assert notes == ()
    assert {str(i.sop_instance_uid) for _, i in manifest.instances() if i.flagged_by} == flagged
    kin = manifest.key_objects[0][1]
    assert kin.key_object is not None
    assert kin.key_object.title.value == "113000"
    assert kin.key_object.description == "Lesion near the spine"
    flagged_instance = next(i for _, i in manifest.instances() if i.flagged_by)
    assert flagged_instance.key_description == "Lesion near the spine"
    assert flagged_instance.flagged_by[0].sop_instance_uid == kin.sop_instance_uid
    plan = plan_key_images(manifest)
    assert {str(u) for r in plan.requests for u in r.instance_uids} == flagged


def test_created_manifest_is_conformant_and_complete(tmp_path: Path, study_metadata: Any) -> None:
    path = _create(tmp_path, study_metadata[0])
    report = validate_bytes(path.read_bytes(), str(path))
    assert report.ok, report.as_text()
    manifest, _ = read_kos(pydicom.dcmread(path))
    assert [s.modality for s in manifest.series] == ["CT", "MR", "KO"]
    assert {s.retrieve_location_uid for s in manifest.series} == {"1.3.6.1.4.1.19376.1.1.200.9"}
    assert manifest.series[1].instances[0].frames == 40
    assert manifest.study.requests[0].placer_order is not None
    assert manifest.study.requests[0].placer_order.value == "ORD7"
    assert [r.value for r in manifest.study.target_regions] == ["67734004"]


def test_study_without_key_image_note_has_no_flags(
    tmp_path: Path, study_metadata_without_kin: Any
) -> None:
    path = _create(tmp_path, study_metadata_without_kin[0])
    assert [line for line in _dciodvfy(path) if line.startswith("Error")] == []
    manifest, _ = read_kos(pydicom.dcmread(path))
    assert not manifest.has_key_image_flags


def test_two_studies_are_refused(study_metadata: Any) -> None:
    metadata = [dict(m) for m in study_metadata[0]]
    metadata[0] = {**metadata[0], "0020000D": {"vr": "UI", "Value": ["1.2.3.4"]}}
    with pytest.raises(CreationError, match="covers 2 studies"):
        create_kos(metadata, LOCATION)


@pytest.mark.parametrize("body_part", ["HEAD", "KNEE", "SOMEWHERE", None])
def test_any_body_part_gives_a_manifest_dciodvfy_accepts(
    tmp_path: Path, study_metadata: Any, body_part: str | None
) -> None:
    """Issue 16, class 6: a Body Part Examined outside CID IHE-MADO1, or none, still gives a
    Target Region (the mapped region, else "Topography unknown")."""
    metadata = [dict(m) for m in study_metadata[0]]
    for instance in metadata:
        instance.pop("00180015", None)
        if body_part is not None:
            instance["00180015"] = {"vr": "CS", "Value": [body_part]}
    path = _create(tmp_path, metadata)
    assert [line for line in _dciodvfy(path) if line.startswith("Error")] == []
    report = validate_bytes(path.read_bytes(), str(path))
    assert report.ok, report.as_text()
