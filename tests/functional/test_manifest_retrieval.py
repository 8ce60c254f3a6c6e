"""``mado-gateway fetch``: from a MADO manifest to Part 10 files, through two gateway processes
and Orthanc, and directly in Retrieve URL mode (issue acceptance: key images from the Key Image
Notes when the manifest has no key-image flags)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from mado.create import SeriesLocation, build_manifest, datasets_from_metadata
from mado.load import write_path
from peers.gateway import REPO
from peers.multipart import split_multipart
from peers.orthanc import OrthancServer
from peers.studies import SyntheticInstance, SyntheticStudy, make_key_image_note, make_study
from routing.ids import Oid
from tests.functional.chain import COMMUNITY_A, RLUID, Chain
from tests.functional.manifests import fetch, post_manifest, strip_key_image_flags
from tests.functional.manifests import received as stored


@dataclasses.dataclass(frozen=True)
class Case:
    study: SyntheticStudy
    note: SyntheticInstance
    flagged: list[SyntheticInstance]
    manifest: Path  # KOS manifest WITHOUT key-image flags


@pytest.fixture(scope="module")
def case(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Case:
    study = make_study(
        seed="fetch-kin", series_count=2, instances_per_series=10, rows=32, columns=32
    )
    flagged = [study.instances[2], study.instances[5], study.instances[13]]
    note = make_key_image_note(study, flagged, seed="fetch-kin")
    orthanc.upload_all([i.part10 for i in study.instances] + [note.part10])
    with urllib.request.urlopen(
        f"{orthanc.dicomweb_url}studies/{study.study_uid}/metadata"
    ) as answer:
        metadata = orjson.loads(answer.read())
    location = SeriesLocation(retrieve_location_uid=Oid(RLUID), retrieve_url=orthanc.dicomweb_url)
    manifest = build_manifest(datasets_from_metadata(metadata), location)
    assert manifest.has_key_image_flags  # the Content Creator read the note …
    bare = strip_key_image_flags(manifest)  # … and this manifest pretends it did not
    assert not bare.has_key_image_flags
    path = tmp_path_factory.mktemp("manifest") / "manifest.dcm"
    write_path(bare, path, "kos")
    return Case(study=study, note=note, flagged=flagged, manifest=path)





def direct_instance(
    orthanc: OrthancServer, study: SyntheticStudy, instance: SyntheticInstance
) -> bytes:
    url = (
        f"{orthanc.dicomweb_url}studies/{study.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )
    request = urllib.request.Request(
        url, headers={"Accept": 'multipart/related; type="application/dicom"'}
    )
    with urllib.request.urlopen(request) as answer:
        return split_multipart(answer.read(), answer.headers["Content-Type"])[0].body


def test_key_images_only_through_two_gateways_from_the_key_image_notes(
    case: Case, chain: Chain, tmp_path: Path
) -> None:
    result = fetch(
        str(case.manifest),
        "--gateway",
        chain.initiating.endpoint,
        "--home-community-id",
        COMMUNITY_A,
        "--key-images-only",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Key Image Notes" in result.stderr
    files = stored(tmp_path)
    assert set(files) == {i.sop_instance_uid for i in case.flagged}
    for instance in case.flagged:
        assert files[instance.sop_instance_uid] == direct_instance(
            chain.orthanc, case.study, instance
        )
        assert files[instance.sop_instance_uid] == instance.part10
    assert "3 instances" in result.stdout
    assert not (tmp_path / ".incoming").exists()


@pytest.mark.checklist(5)
def test_whole_study_in_retrieve_url_mode(case: Case, tmp_path: Path) -> None:
    result = fetch(str(case.manifest), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    files = stored(tmp_path)
    expected = {i.sop_instance_uid: i.part10 for i in case.study.instances}
    expected[case.note.sop_instance_uid] = case.note.part10
    assert files == expected
    assert "did not arrive" not in result.stdout


def test_series_by_modality_through_the_gateways(case: Case, chain: Chain, tmp_path: Path) -> None:
    result = fetch(
        str(case.manifest),
        "--gateway",
        chain.initiating.endpoint,
        "--home-community-id",
        COMMUNITY_A,
        "--modality",
        "KO",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert set(stored(tmp_path)) == {case.note.sop_instance_uid}


@pytest.mark.parametrize(
    ("arguments", "message", "status"),
    [
        (["--home-community-id", "1.2.3"], "go together", 2),
        (["--gateway", "http://x/", "--home-community-id", "1.02"], "leading zeros", 2),
        (["--series", "9.9.9"], "series not in the manifest", 1),
    ],
)
def test_usage_and_selection_errors(
    case: Case, tmp_path: Path, arguments: list[str], message: str, status: int
) -> None:
    result = fetch(str(case.manifest), "--out", str(tmp_path), *arguments)
    assert result.returncode == status
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_community_fails_with_the_gateways_reason(
    case: Case, chain: Chain, tmp_path: Path
) -> None:
    result = fetch(
        str(case.manifest),
        "--gateway",
        chain.initiating.endpoint,
        "--home-community-id",
        "1.2.3.999",
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 1
    assert "HTTP 404" in result.stderr
    assert "no responding gateway is configured for community 1.2.3.999" in result.stderr
    assert stored(tmp_path) == {}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00" * 128 + b"DICM\x02\x00", "DICM"),
        (b'{"resourceType": "Bundle", "type": "document", "entry": []}', "ImagingStudy"),
        (b"hello", "neither"),
    ],
)
def test_malformed_manifests_are_clear_errors(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad-manifest"
    path.write_bytes(content)
    result = fetch(str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("mado-gateway fetch:")


def post(chain: Chain, manifest: bytes, query: str) -> tuple[int, str, bytes]:
    return post_manifest(
        chain.initiating.url, manifest, query=query, headers={"Content-Type": "application/dicom"}
    )


def test_post_manifest_streams_the_key_images_as_one_multipart_answer(
    case: Case, chain: Chain
) -> None:
    status, content_type, body = post(chain, case.manifest.read_bytes(), f"homeCommunityId={COMMUNITY_A}&selection=key-images"
    )
    assert status == 200
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    parts = split_multipart(body, content_type)
    assert sorted(p.body for p in parts) == sorted(i.part10 for i in case.flagged)
    assert all(p.headers["content-type"].startswith("application/dicom") for p in parts)


def test_post_fhir_manifest_whole_study(case: Case, chain: Chain, tmp_path: Path) -> None:
    fhir = tmp_path / "manifest.json"
    converted = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "manifest",
            "convert",
            str(case.manifest),
            "--to",
            "fhir",
            "--out",
            str(fhir),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert converted.returncode == 0, converted.stderr
    status, content_type, body = post(chain, fhir.read_bytes(), f"homeCommunityId={COMMUNITY_A}"
    )
    assert status == 200
    received = sorted(p.body for p in split_multipart(body, content_type))
    assert received == sorted([i.part10 for i in case.study.instances] + [case.note.part10])


@pytest.mark.parametrize(
    ("body", "query", "status", "problem"),
    [
        (b"not a manifest", f"homeCommunityId={COMMUNITY_A}", 400, "invalid-manifest"),
        (None, f"homeCommunityId={COMMUNITY_A}&selection=everything", 400, "invalid-selection"),
        (
            None,
            f"homeCommunityId={COMMUNITY_A}&selection=series&series=9.9.9",
            400,
            "invalid-selection",
        ),
        (None, "homeCommunityId=1.2.3.999", 404, "unknown-community"),
        (None, "homeCommunityId=1.02", 400, "invalid-identifier"),
    ],
)
def test_post_manifest_errors_are_problems(
    case: Case, chain: Chain, body: bytes | None, query: str, status: int, problem: str
) -> None:
    got_status, content_type, answer = post(chain, body or case.manifest.read_bytes(), query
    )
    assert got_status == status
    assert content_type == "application/problem+json"
    assert orjson.loads(answer)["type"] == f"urn:mado-gateway:problem:{problem}"


def test_an_out_folder_that_cannot_be_one_is_a_message(case: Case, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"")
    result = fetch(str(case.manifest), "--out", str(not_a_folder))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot use it as a folder" in result.stderr
