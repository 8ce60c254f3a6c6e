"""A MADO retrieval returns the objects as stored (issue 16, class 1).

A study with an RLE Lossless series (encoded by pydicom), a JPEG Lossless series (transcoded by
Orthanc's own DCMTK and stored so) and an uncompressed series is stored in the real Orthanc.
``fetch`` — through two gateway processes and straight from the Retrieve URL — and
``POST /mado/retrieve`` must hand back every instance byte for byte as Orthanc stored it
(``/instances/{id}/file``), unless the caller asks for a transfer syntax.

Orthanc's DICOMweb plugin transcodes to Explicit VR Little Endian when the Accept names no
transfer syntax, and returns the stored bytes for ``transfer-syntax=*`` (checked here too).
"""

from __future__ import annotations

import dataclasses
import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pydicom
import pytest

from mado.create import SeriesLocation, build_manifest, datasets_from_metadata
from mado.load import write_path
from peers.multipart import split_multipart
from peers.orthanc import OrthancServer
from peers.studies import SyntheticInstance, compress_rle, make_study
from routing.ids import Oid
from tests.functional.chain import COMMUNITY_A, RLUID, Chain
from tests.functional.manifests import fetch, post_manifest, received

JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
RLE_LOSSLESS = "1.2.840.10008.1.2.5"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOM = 'multipart/related; type="application/dicom"'


@dataclasses.dataclass(frozen=True)
class Stored:
    manifest: Path
    files: dict[str, bytes]  # SOP Instance UID -> Orthanc's /instances/{id}/file
    syntaxes: dict[str, str]  # SOP Instance UID -> stored transfer syntax


def _rest(orthanc: OrthancServer, path: str, body: bytes | None = None, method: str = "GET") -> bytes:
    request = urllib.request.Request(orthanc.url + path, data=body, method=method)
    with urllib.request.urlopen(request, timeout=30) as answer:
        return bytes(answer.read())


def _orthanc_id(orthanc: OrthancServer, sop_uid: str) -> str:
    found = json.loads(_rest(orthanc, "/tools/lookup", sop_uid.encode(), "POST"))
    return str(next(item["ID"] for item in found if item["Type"] == "Instance"))


def _store_jpeg_lossless(orthanc: OrthancServer, instance: SyntheticInstance) -> None:
    """Orthanc transcodes the instance and the JPEG Lossless object replaces it in storage."""
    orthanc.upload(instance.part10)
    ident = _orthanc_id(orthanc, instance.sop_instance_uid)
    order = {"Transcode": JPEG_LOSSLESS, "Keep": ["SOPInstanceUID"], "Force": True}
    jpeg = _rest(orthanc, f"/instances/{ident}/modify", json.dumps(order).encode(), "POST")
    _rest(orthanc, f"/instances/{ident}", method="DELETE")
    orthanc.upload(jpeg)


@pytest.fixture(scope="module")
def stored(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Stored:
    study = make_study(
        seed="transfer-syntax", series_count=3, instances_per_series=4, rows=64, columns=64
    )
    rle, jpeg, plain = (study.of_series(uid) for uid in study.series_uids)
    orthanc.upload_all([compress_rle(i).part10 for i in rle] + [i.part10 for i in plain])
    for instance in jpeg:
        _store_jpeg_lossless(orthanc, instance)
    files: dict[str, bytes] = {}
    syntaxes: dict[str, str] = {}
    for instance in study.instances:
        uid = instance.sop_instance_uid
        files[uid] = _rest(orthanc, f"/instances/{_orthanc_id(orthanc, uid)}/file")
        syntaxes[uid] = syntax_of(files[uid])
    assert {syntaxes[i.sop_instance_uid] for i in rle} == {RLE_LOSSLESS}
    assert {syntaxes[i.sop_instance_uid] for i in jpeg} == {JPEG_LOSSLESS}
    url = f"{orthanc.dicomweb_url}studies/{study.study_uid}/metadata"
    with urllib.request.urlopen(url) as answer:
        metadata = orjson.loads(answer.read())
    location = SeriesLocation(retrieve_location_uid=Oid(RLUID), retrieve_url=orthanc.dicomweb_url)
    path = tmp_path_factory.mktemp("ts-manifest") / "manifest.dcm"
    write_path(build_manifest(datasets_from_metadata(metadata), location), path, "kos")
    return Stored(manifest=path, files=files, syntaxes=syntaxes)






def syntax_of(part10: bytes) -> str:
    return str(pydicom.dcmread(io.BytesIO(part10)).file_meta.TransferSyntaxUID)


def test_orthanc_transcodes_without_a_transfer_syntax_and_keeps_bytes_for_star(
    stored: Stored, chain: Chain
) -> None:
    """What the real Imaging Document Source does: the reason fetch must ask for ``*``."""
    uid = next(u for u, ts in stored.syntaxes.items() if ts == JPEG_LOSSLESS)
    ds = pydicom.dcmread(io.BytesIO(stored.files[uid]))
    url = (
        f"{chain.orthanc.dicomweb_url}studies/{ds.StudyInstanceUID}/series/"
        f"{ds.SeriesInstanceUID}/instances/{uid}"
    )
    bodies = {}
    for accept in (DICOM, f"{DICOM}; transfer-syntax=*"):
        request = urllib.request.Request(url, headers={"Accept": accept})
        with urllib.request.urlopen(request) as answer:
            bodies[accept] = split_multipart(answer.read(), answer.headers["Content-Type"])[0].body
    assert syntax_of(bodies[DICOM]) == EXPLICIT_LE
    assert bodies[f"{DICOM}; transfer-syntax=*"] == stored.files[uid]


def test_fetch_through_two_gateways_returns_the_stored_bytes(
    stored: Stored, chain: Chain, tmp_path: Path
) -> None:
    result = fetch(
        str(stored.manifest),
        "--gateway",
        chain.initiating.endpoint,
        "--home-community-id",
        COMMUNITY_A,
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    got = received(tmp_path)
    assert set(got) == set(stored.files)
    differing = sorted(uid for uid in got if got[uid] != stored.files[uid])
    assert differing == [], f"{len(differing)} of {len(got)} instances differ from storage"


def test_fetch_in_retrieve_url_mode_returns_the_stored_bytes(
    stored: Stored, tmp_path: Path
) -> None:
    result = fetch(str(stored.manifest), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert received(tmp_path) == stored.files


def test_fetch_with_a_transfer_syntax_asks_for_it(
    stored: Stored, chain: Chain, tmp_path: Path
) -> None:
    result = fetch(
        str(stored.manifest),
        "--gateway",
        chain.initiating.endpoint,
        "--home-community-id",
        COMMUNITY_A,
        "--transfer-syntax",
        EXPLICIT_LE,
        "--out",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    got = received(tmp_path)
    assert set(got) == set(stored.files)
    assert {syntax_of(data) for data in got.values()} == {EXPLICIT_LE}


@pytest.mark.parametrize("value", ["jpeg", "1.2.840.10008.1.2.4.070", ""])
def test_fetch_refuses_a_transfer_syntax_that_is_no_uid(
    stored: Stored, tmp_path: Path, value: str
) -> None:
    result = fetch(str(stored.manifest), "--transfer-syntax", value, "--out", str(tmp_path))
    assert result.returncode == 2
    assert "--transfer-syntax" in result.stderr
    assert "Traceback" not in result.stderr


def post(chain: Chain, manifest: bytes, accept: str | None) -> tuple[int, str, bytes]:
    headers = {"Content-Type": "application/dicom"}
    if accept is not None:
        headers["Accept"] = accept
    return post_manifest(chain.initiating.url, manifest, headers=headers)


@pytest.mark.parametrize("accept", [None, "*/*", DICOM, "multipart/related"])
def test_post_manifest_without_a_transfer_syntax_returns_the_stored_bytes(
    stored: Stored, chain: Chain, accept: str | None
) -> None:
    status, content_type, body = post(chain, stored.manifest.read_bytes(), accept)
    assert status == 200, body[:300]
    parts = split_multipart(body, content_type)
    by_uid = {pydicom.dcmread(io.BytesIO(p.body)).SOPInstanceUID: p.body for p in parts}
    assert by_uid == stored.files


def test_post_manifest_passes_the_callers_transfer_syntax(stored: Stored, chain: Chain) -> None:
    status, content_type, body = post(
        chain, stored.manifest.read_bytes(), f"{DICOM}; transfer-syntax={EXPLICIT_LE}"
    )
    assert status == 200, body[:300]
    parts = split_multipart(body, content_type)
    assert len(parts) == len(stored.files)
    assert {syntax_of(p.body) for p in parts} == {EXPLICIT_LE}


@pytest.mark.checklist(23)
def test_post_manifest_refuses_only_syntaxes_dicomweb_lacks(stored: Stored, chain: Chain) -> None:
    status, content_type, body = post(
        chain, stored.manifest.read_bytes(), f"{DICOM}; transfer-syntax=1.2.840.10008.1.2"
    )
    assert status == 406, body[:300]
    assert content_type == "application/problem+json"
