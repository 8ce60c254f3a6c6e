"""DICOMweb consumers reach a community that speaks only XCA-I, and a source that speaks only
XDS-I.b: the bridge RAD-160 → RAD-75 / RAD-69 (xcai-digest.md §6.4 item 3, §8.1; items 30-34),
with real processes only:

    consumer ─RAD-160→ B (community B, initiating) ─RAD-160→ A (community A)
             A ─RAD-75→ C (community C, responding, bridge) ─WADO-RS→ Orthanc
             A ─RAD-69→ S (community A's XDS-I.b source: a gateway in bridge mode) ─WADO-RS→ Orthanc

A knows C only as a ``rad-75`` community and its source at ``RLUID_S`` only as a ``rad-69``
source; B knows C through A (``xc-wado``). Each test has its own small study in this module's
Orthanc, so what one test leaves in A's manifest cache never changes another's outcome.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from mado.create import SeriesLocation, build_manifest
from mado.load import write_path
from peers.gateway import (
    GatewayProcess,
    gateway_config,
    rad_upstream,
    soap_url,
    xca_server,
    xca_spool,
)
from peers.multipart import split_multipart
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import (
    SyntheticInstance,
    SyntheticStudy,
    compress_rle,
    make_key_image_note,
    make_study,
)
from routing.ids import Oid
from tests.functional.manifests import fetch, post_manifest, received, strip_key_image_flags

COMMUNITY_A = "urn:oid:1.3.6.1.4.1.21367.13.80.1"
COMMUNITY_B = "urn:oid:1.3.6.1.4.1.21367.13.80.2"
COMMUNITY_C = "urn:oid:1.3.6.1.4.1.21367.13.80.3"
RLUID_C = "1.3.6.1.4.1.21367.13.80.3.200"  # C's source, as C's manifests name it
RLUID_S = "1.3.6.1.4.1.21367.13.80.1.300"  # A's XDS-I.b Imaging Document Source
DICOM = 'multipart/related; type="application/dicom"'
EXPLICIT = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"


@dataclass
class World:
    a: GatewayProcess
    b: GatewayProcess
    c: GatewayProcess
    s: GatewayProcess
    orthanc: OrthancServer
    folder: Path

    def via_b(self, tail: str) -> str:
        return f"{self.b.endpoint}homeCommunityId/{COMMUNITY_C}/RetrieveLocationUID/{RLUID_C}/{tail}"

    def at_a(self, tail: str, hcid: str = COMMUNITY_C, rluid: str = RLUID_C) -> str:
        return f"{self.a.endpoint}homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}/{tail}"


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """An Orthanc of these tests' own: the studies they upload stay out of the session's."""
    with OrthancServer(tmp_path_factory.mktemp("orthanc-fromweb")) as server:
        yield server


@pytest.fixture(scope="module")
def world(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("xcai-fromweb")
    a_port = free_port()
    c = gateway_config(
        home_community_id=COMMUNITY_C,
        port=free_port(),
        upstreams={"ids-c": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID_C: "ids-c"},
        xca=xca_server(spool=xca_spool(folder / "spool-c")),
    )
    s = gateway_config(
        home_community_id=COMMUNITY_A,
        port=free_port(),
        upstreams={"ids-s": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID_S: "ids-s"},
        xca=xca_server(spool=xca_spool(folder / "spool-s")),
    )
    with (
        GatewayProcess(folder, c, name="responding-c") as gateway_c,
        GatewayProcess(folder, s, name="source-s") as gateway_s,
    ):
        a = gateway_config(
            home_community_id=COMMUNITY_A,
            port=a_port,
            upstreams={
                "community-c": rad_upstream("rad-75", [soap_url(gateway_c)]),
                "ids-soap": rad_upstream("rad-69", [soap_url(gateway_s)]),
            },
            communities={COMMUNITY_C: "community-c"},
            sources={RLUID_S: "ids-soap"},
            # XCA-I has no "as stored": `transfer-syntax=*` (dicomweb-client's default, and
            # the manifest retrievals') is this list. These studies are stored in Explicit VR
            # Little Endian; the default list asks for compressed syntaxes first, which
            # Orthanc would transcode to.
            xca=xca_server(any_transfer_syntaxes=[EXPLICIT], spool=xca_spool(folder / "spool-a")),
        )
        b = gateway_config(
            home_community_id=COMMUNITY_B,
            port=free_port(),
            upstreams={
                "via-a": {"protocol": "xc-wado", "base_urls": [f"http://127.0.0.1:{a_port}/wado/"]}
            },
            communities={COMMUNITY_C: "via-a"},
        )
        with (
            GatewayProcess(folder, a, name="gateway-a") as gateway_a,
            GatewayProcess(folder, b, name="initiating-b") as gateway_b,
        ):
            yield World(
                a=gateway_a, b=gateway_b, c=gateway_c, s=gateway_s, orthanc=orthanc, folder=folder
            )


def study(orthanc: OrthancServer, seed: str, *, series: int, each: int, upload: int | None = None,
          rle: bool = False) -> SyntheticStudy:
    """A small study of its own, uploaded to Orthanc (the first ``upload`` instances only)."""
    made = make_study(seed=seed, series_count=series, instances_per_series=each, rows=16, columns=16)
    if rle:
        made = SyntheticStudy(
            study_uid=made.study_uid,
            patient_id=made.patient_id,
            instances=tuple(compress_rle(i) for i in made.instances),
        )
    kept = made.instances if upload is None else made.instances[:upload]
    orthanc.upload_all([i.part10 for i in kept])
    return made


def manifest_of(made: SyntheticStudy, folder: Path, name: str) -> Path:
    """A KOS manifest listing every instance of ``made`` at C's Retrieve Location UID."""
    datasets = [
        pydicom.dcmread(io.BytesIO(i.part10), stop_before_pixels=True) for i in made.instances
    ]
    manifest = build_manifest(datasets, SeriesLocation(retrieve_location_uid=Oid(RLUID_C)))
    path = folder / f"{name}.dcm"
    write_path(manifest, path, "kos")
    return path


def get(url: str, accept: str | None = DICOM) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (names in lower case) and body."""
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, _lower(answer.headers.items()), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers.items()), error.read()


def _lower(items: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def instance_tail(made: SyntheticStudy, instance: SyntheticInstance) -> str:
    return (
        f"studies/{made.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )


def audit_lines(gateway: GatewayProcess, about: str, count: int) -> list[str]:
    """The audit messages of ``gateway`` naming ``about`` (a study UID), once ``count`` of
    them are written (the file destination sends from the journal, a moment later)."""
    log = gateway.audit_folder / "audit.log"
    deadline = time.monotonic() + 10.0
    mine: list[str] = []
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        mine = [line for line in text.splitlines() if about in line]
        if len(mine) >= count:
            break
        time.sleep(0.1)
    return mine


# -- an instance over RAD-75: dicomweb-client through B and A (items 30, 31, 33, 34) ---------


@pytest.mark.xcai(30, 33, 34)
def test_dicomweb_client_gets_each_instance_byte_identical_through_rad75(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-instances", series=2, each=2)
    client = DICOMwebClient(
        url=f"{world.b.endpoint}homeCommunityId/{COMMUNITY_C}/RetrieveLocationUID/{RLUID_C}"
    )
    for instance in made.instances:
        dataset = client.retrieve_instance(
            made.study_uid, instance.series_uid, instance.sop_instance_uid
        )
        stored = pydicom.dcmread(io.BytesIO(instance.part10))
        assert dataset.SOPInstanceUID == instance.sop_instance_uid
        assert dataset.PixelData == stored.PixelData
        # the same request as bytes: the very file Orthanc stores, in a DICOMweb part
        status, headers, body = get(world.via_b(instance_tail(made, instance)))
        assert status == 200
        (part,) = split_multipart(body, headers["content-type"])
        assert part.headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT}"
        assert sha(part.body) == sha(instance.part10)
        direct = get(f"{world.orthanc.dicomweb_url}{instance_tail(made, instance)}")
        assert split_multipart(direct[2], direct[1]["content-type"])[0].body == part.body


@pytest.mark.xcai(31, 34)
def test_the_accept_decides_the_transfer_syntax_list(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-rle", series=1, each=1, rle=True)
    (instance,) = made.instances
    tail = instance_tail(made, instance)
    status, headers, body = get(
        world.via_b(tail), f"{DICOM}; transfer-syntax={RLE}, {DICOM}; transfer-syntax={EXPLICIT}; q=0.5"
    )
    assert status == 200
    (part,) = split_multipart(body, headers["content-type"])
    assert part.headers["content-type"] == f"application/dicom; transfer-syntax={RLE}"
    assert part.body == instance.part10  # stored RLE, returned as stored
    # no transfer-syntax in the Accept: Explicit VR Little Endian, which Orthanc decodes to
    status, headers, body = get(world.via_b(tail))
    (part,) = split_multipart(body, headers["content-type"])
    assert part.headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT}"
    assert pydicom.dcmread(io.BytesIO(part.body)).file_meta.TransferSyntaxUID == EXPLICIT


@pytest.mark.xcai(33)
def test_an_instance_the_community_lacks_is_404(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-lacks", series=1, each=2, upload=1)
    status, _, body = get(world.at_a(instance_tail(made, made.instances[1])))
    assert status == 404
    problem = json.loads(body)
    assert problem["type"] == "urn:mado-gateway:problem:not-found"
    assert "XDSDocumentUniqueIdError" in problem["detail"]


# -- an instance over RAD-69, at a responding gateway -------------------------------------------


@pytest.mark.xcai(30, 34)
def test_a_responding_gateway_serves_rad160_from_an_xdsi_source_over_rad69(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-rad69", series=1, each=2)
    for instance in made.instances:
        status, headers, body = get(
            world.at_a(instance_tail(made, instance), hcid=COMMUNITY_A, rluid=RLUID_S)
        )
        assert status == 200
        (part,) = split_multipart(body, headers["content-type"])
        assert sha(part.body) == sha(instance.part10)
    lines = audit_lines(world.a, made.study_uid, 2 * len(made.instances))
    assert any('csd-code="RAD-69"' in line and 'csd-code="110103"' in line for line in lines)


# -- studies and series: a manifest lists them (item 32) -----------------------------------------


@pytest.mark.xcai(32)
def test_without_a_manifest_a_study_is_the_documented_problem(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-nolist", series=1, each=2)
    for tail in (f"studies/{made.study_uid}", f"studies/{made.study_uid}/series/{made.series_uids[0]}"):
        status, _, body = get(world.at_a(tail))
        assert status == 409
        problem = json.loads(body)
        assert problem["type"] == "urn:mado-gateway:problem:instance-list-required"
        assert "cannot list the instances" in problem["detail"]
        assert get(world.via_b(tail))[0] == 409  # relayed by the initiating gateway
    for resource in ("metadata", "rendered", "thumbnail"):
        status, _, body = get(world.at_a(f"studies/{made.study_uid}/{resource}"), accept=None)
        assert status == 501
        assert json.loads(body)["type"] == "urn:mado-gateway:problem:not-bridgeable"


def post_kos(gateway: GatewayProcess, manifest: Path) -> tuple[int, str, bytes]:
    """POST /mado/retrieve of a KOS ``manifest`` at ``gateway``, for community C."""
    return post_manifest(
        gateway.url,
        manifest.read_bytes(),
        query=f"homeCommunityId={COMMUNITY_C}",
        headers={"Content-Type": "application/dicom"},
    )


@pytest.mark.xcai(32, 34)
def test_a_posted_manifest_streams_the_study_and_then_lists_it_for_rad160(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-post", series=2, each=3)
    manifest = manifest_of(made, world.folder, "post")
    hits = world.a.metric('mado_gateway_manifest_cache_events_total{event="hit"}') or 0.0
    # POST /mado/retrieve at A: bridged natively, one RAD-75, one multipart answer
    status, content_type, body = post_kos(world.a, manifest)
    assert status == 200
    parts = split_multipart(body, content_type)
    assert sorted(sha(p.body) for p in parts) == sorted(sha(i.part10) for i in made.instances)
    assert {p.headers["content-type"] for p in parts} == {
        f"application/dicom; transfer-syntax={EXPLICIT}"
    }
    # … and A now holds its instance list: a study-level RAD-160 through B is the whole study
    status, headers, body = get(world.via_b(f"studies/{made.study_uid}"))
    assert status == 200
    whole = split_multipart(body, headers["content-type"])
    assert sorted(sha(p.body) for p in whole) == sorted(sha(i.part10) for i in made.instances)
    series = made.series_uids[1]
    status, headers, body = get(world.via_b(f"studies/{made.study_uid}/series/{series}"))
    assert status == 200
    assert sorted(p.body for p in split_multipart(body, headers["content-type"])) == sorted(
        i.part10 for i in made.of_series(series)
    )
    assert (world.a.metric('mado_gateway_manifest_cache_events_total{event="hit"}') or 0) >= hits + 2


@pytest.mark.xcai(32, 33)
def test_a_listed_instance_the_community_lacks_makes_a_206_with_a_warning(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-partial", series=1, each=3, upload=2)
    manifest = manifest_of(made, world.folder, "partial")
    status, content_type, body = post_kos(world.a, manifest)
    assert status == 200  # a manifest retrieval takes what comes (MADO X.1.1.2)
    assert len(split_multipart(body, content_type)) == 2
    series = made.series_uids[0]
    status, headers, body = get(world.via_b(f"studies/{made.study_uid}/series/{series}"))
    assert status == 206
    assert headers["warning"].startswith("299 ")
    parts = split_multipart(body, headers["content-type"])
    assert sorted(p.body for p in parts) == sorted(i.part10 for i in made.instances[:2])


@pytest.mark.xcai(32)
def test_key_images_of_a_posted_manifest_come_from_notes_read_over_rad75(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-kin", series=2, each=3)
    flagged = [made.instances[1], made.instances[4]]
    note = make_key_image_note(made, flagged, seed="xcai-fromweb-kin")
    world.orthanc.upload_all([note.part10])
    datasets = [
        pydicom.dcmread(io.BytesIO(i.part10), stop_before_pixels=True)
        for i in (*made.instances, note)
    ]
    manifest = build_manifest(datasets, SeriesLocation(retrieve_location_uid=Oid(RLUID_C)))
    assert manifest.has_key_image_flags  # the Content Creator read the note …
    path = world.folder / "kin.dcm"
    write_path(strip_key_image_flags(manifest), path, "kos")  # … this manifest does not say so
    # A reads the Key Object series over RAD-75 (C speaks only XCA-I), then the key images
    status, content_type, body = post_manifest(
        world.a.url,
        path.read_bytes(),
        query=f"homeCommunityId={COMMUNITY_C}&selection=key-images",
        headers={"Content-Type": "application/dicom"},
    )
    assert status == 200
    parts = split_multipart(body, content_type)
    assert sorted(sha(p.body) for p in parts) == sorted(sha(i.part10) for i in flagged)


# -- mado-gateway fetch and POST /mado/retrieve at the initiating gateway ----------------------


@pytest.mark.xcai(32)
def test_fetch_retrieves_every_instance_instance_by_instance(world: World, tmp_path: Path) -> None:
    made = study(world.orthanc, "xcai-fromweb-fetch", series=2, each=2)
    manifest = manifest_of(made, world.folder, "fetch")
    out = tmp_path / "out"
    done = fetch(
        str(manifest), "--gateway", world.b.endpoint, "--home-community-id", COMMUNITY_C,
        "--out", str(out),
    )
    assert done.returncode == 0, done.stderr
    assert "retrieved instance by instance" in done.stdout
    got = received(out)
    assert {uid: sha(data) for uid, data in got.items()} == {
        i.sop_instance_uid: sha(i.part10) for i in made.instances
    }


@pytest.mark.xcai(32)
def test_post_at_the_initiating_gateway_asks_instance_by_instance(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-post-b", series=1, each=3)
    manifest = manifest_of(made, world.folder, "post-b")
    status, content_type, body = post_kos(world.b, manifest)
    assert status == 200
    parts = split_multipart(body, content_type)
    assert sorted(p.body for p in parts) == sorted(i.part10 for i in made.instances)


# -- the audit trail of a bridged RAD-160 ------------------------------------------------------


def test_gateway_a_audits_the_rad160_and_the_rad75_leg_separately(world: World) -> None:
    made = study(world.orthanc, "xcai-fromweb-audit", series=1, each=1)
    (instance,) = made.instances
    assert get(world.at_a(instance_tail(made, instance)))[0] == 200
    lines = audit_lines(world.a, made.study_uid, 2)
    accessed = [line for line in lines if 'csd-code="110103"' in line]
    transferred = [line for line in lines if 'csd-code="110104"' in line]
    assert len(accessed) == 1 and 'csd-code="RAD-75"' in accessed[0]
    assert len(transferred) == 1 and 'csd-code="RAD-160"' in transferred[0]
    assert 'csd-code="RAD-107"' not in transferred[0]
