"""A manifest cannot take the gateway down (issue 16, class 11).

Hostile manifests are POSTed to a running gateway process: a deflated KOS that inflates to
1 GiB, a KOS with sequences nested 1000 deep, a FHIR document nested 10,000 deep and FHIR
documents that are one huge array. Each is answered 4xx within seconds, the gateway's resident
memory (psutil) grows by less than 64 MB, and a legitimate manifest POSTed at the same time is
answered in full. ``fetch`` and ``manifest validate`` refuse the same files with a message.

And no manifest body provokes a 500 (class 12): mutated KOS and FHIR manifests (truncated,
bit-flipped, JSON values of the wrong type) POSTed to the same process are answered 200 or
with a 4xx problem document.
"""

from __future__ import annotations

import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mado.create import SeriesLocation, build_manifest, datasets_from_metadata
from mado.load import encode
from peers.chain import chain_configs
from peers.gateway import REPO, GatewayProcess
from peers.multipart import split_multipart
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study
from routing.ids import Oid
from tests.functional.chain import RLUID
from tests.functional.manifests import post_manifest
from tests.property.test_manifest_fuzz import FHIR, KOS, mutated, type_swapped

MB = 1024 * 1024
KOS_CLASS = b"1.2.840.10008.5.1.4.1.1.88.59\x00"
DEFLATED = b"1.2.840.10008.1.2.1.99"
EXPLICIT_LE = b"1.2.840.10008.1.2.1\x00"


def _element(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _part10(transfer_syntax: bytes) -> bytes:
    """Preamble and file meta (explicit VR little endian, PS3.10 §7.1) of a KOS."""
    sop = b"2.25.1234\x00"
    meta = (
        _element(0x0002, 0x0001, b"OB", b"\x00\x01")
        + _element(0x0002, 0x0002, b"UI", KOS_CLASS)
        + _element(0x0002, 0x0003, b"UI", sop)
        + _element(0x0002, 0x0010, b"UI", transfer_syntax)
    )
    return b"\x00" * 128 + b"DICM" + _element(0x0002, 0x0000, b"UL", struct.pack("<I", len(meta))) + meta


def _kos_head() -> bytes:
    return (
        _element(0x0008, 0x0016, b"UI", KOS_CLASS)
        + _element(0x0008, 0x0018, b"UI", b"2.25.1234\x00")
        + _element(0x0020, 0x000D, b"UI", b"2.25.5678\x00")
    )


def deflate_bomb(inflated: int = 1024 * MB) -> bytes:
    """A deflated KOS whose dataset inflates to ``inflated`` bytes (a private OB of zeros)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = [squeeze.compress(_kos_head() + struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, inflated))]
    zeros = bytes(MB)
    for _ in range(inflated // MB):
        body.append(squeeze.compress(zeros))
    body.append(squeeze.flush())
    return _part10(DEFLATED) + b"".join(body)


def nested_kos(depth: int = 1000) -> bytes:
    """A KOS whose Content Sequence nests ``depth`` deep (undefined lengths, ~36 bytes a level)."""
    opening = struct.pack("<HH2sHI", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF) + struct.pack(
        "<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF
    )
    closing = struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return _part10(EXPLICIT_LE) + _kos_head() + opening * depth + closing * depth


def nested_fhir(depth: int = 10_000) -> bytes:
    return b'{"resourceType":"Bundle","entry":' + b"[" * depth + b"]" * depth + b"}"


def huge_array_fhir(instances: int = 450_000) -> bytes:
    instance = b'{"uid":"1.2.3.4.5","sopClass":{"code":"1.2.840.10008.5.1.4.1.1.2"}}'
    return (
        b'{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"ImagingStudy",'
        b'"identifier":[{"system":"urn:dicom:uid","value":"urn:oid:1.2.3"}],'
        b'"series":[{"uid":"1.2.3.4","instance":['
        + b",".join([instance] * instances)
        + b"]}]}}]}"
    )


def flat_array_fhir(values: int = 12_000_000) -> bytes:
    return b'{"resourceType":"Bundle","entry":[' + b",".join([b"0"] * values) + b"]}"


BOMBS: dict[str, Callable[[], bytes]] = {
    "deflate-1GiB": deflate_bomb,
    "kos-nested-1000": nested_kos,
    "fhir-nested-10000": nested_fhir,
    "fhir-450k-instances": huge_array_fhir,
    "fhir-12M-values": flat_array_fhir,
}


@dataclass(frozen=True)
class Target:
    gateway: GatewayProcess
    study: SyntheticStudy
    manifest: bytes


@pytest.fixture(scope="module")
def target(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    study = make_study(seed="bombs", series_count=1, instances_per_series=3, rows=16, columns=16)
    orthanc.upload_all([i.part10 for i in study.instances])
    with urllib.request.urlopen(f"{orthanc.dicomweb_url}studies/{study.study_uid}/metadata") as a:
        metadata = orjson.loads(a.read())
    location = SeriesLocation(retrieve_location_uid=Oid(RLUID))
    manifest = encode(build_manifest(datasets_from_metadata(metadata), location), "kos")
    responding, _ = chain_configs(orthanc.dicomweb_url)
    folder = tmp_path_factory.mktemp("bombs")
    with GatewayProcess(folder, responding, name="bomb-target") as gateway:
        yield Target(gateway=gateway, study=study, manifest=manifest)


def post(gateway: GatewayProcess, body: bytes, timeout_s: float = 60) -> tuple[int, str, bytes]:
    return post_manifest(
        gateway.url,
        body,
        headers={"Content-Type": "application/octet-stream"},
        timeout_s=timeout_s,
    )


class PeakRss:
    """The highest resident set size of one process while the block runs (sampled every 20 ms)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / MB


def legitimate(target: Target) -> list[bytes]:
    status, content_type, body = post(target.gateway, target.manifest)
    assert status == 200, body[:300]
    return [p.body for p in split_multipart(body, content_type)]


def test_the_legitimate_manifest_is_served(target: Target) -> None:
    assert sorted(legitimate(target)) == sorted(i.part10 for i in target.study.instances)


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_bomb_is_a_4xx_within_seconds_and_the_gateway_keeps_serving(
    target: Target, name: str
) -> None:
    bomb = BOMBS[name]()
    assert len(bomb) < 32 * MB  # within the manifest size limit: the parser must cope
    legitimate(target)  # warm: the reading machinery exists before the baseline is taken
    with PeakRss(target.gateway.pid) as rss, ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        bombing = pool.submit(post, target.gateway, bomb)
        time.sleep(0.2)
        served = pool.submit(legitimate, target)
        status, content_type, body = bombing.result()
        elapsed = time.monotonic() - started
        assert sorted(served.result()) == sorted(i.part10 for i in target.study.instances)
    assert status == 422, (status, body[:300])
    assert content_type == "application/problem+json"
    assert orjson.loads(body)["type"] == "urn:mado-gateway:problem:manifest-too-complex"
    assert elapsed < 15, f"answered after {elapsed:.1f} s"
    assert rss.growth_mb < 64, f"gateway RSS grew by {rss.growth_mb:.0f} MB"
    assert target.gateway.alive()


@pytest.mark.parametrize("name", ["deflate-1GiB", "kos-nested-1000", "fhir-450k-instances"])
def test_a_bomb_is_a_message_on_the_command_line(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.bin"
    path.write_bytes(BOMBS[name]())
    for command in (["fetch", str(path), "--out", str(tmp_path / "out")], ["manifest", "validate", str(path)]):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "gateway", *command],
            capture_output=True,
            text=True,
            cwd=REPO,
            check=False,
            timeout=60,
        )
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert "too complex to read safely" in result.stderr
        assert time.monotonic() - started < 15


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(mutated(KOS), mutated(FHIR), type_swapped(FHIR)),
)
def test_no_mutated_manifest_is_answered_500(target: Target, body: bytes) -> None:
    status, content_type, answer = post(target.gateway, body)
    assert status < 500, answer[:300]
    if status >= 400:
        assert content_type == "application/problem+json"
        assert orjson.loads(answer)["type"] != "urn:mado-gateway:problem:internal-error"
