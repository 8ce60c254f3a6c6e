"""The manifest worker processes (issue 16, class 11): time, memory and death are bounded and
reported as ManifestTooComplex, and the pool keeps serving afterwards."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest

from mado.errors import InvalidManifest, ManifestTooComplex, UnreadableManifest
from mado.guard import ParseLimits
from mado.jobs import read_manifest
from mado.load import read_bytes
from mado.sandbox import ManifestWorkers
from tests.property.test_manifest_fuzz import KOS


@pytest.fixture(scope="module")
def workers() -> Iterator[ManifestWorkers]:
    pool = ManifestWorkers(ParseLimits(timeout_s=2, memory_bytes=256 * 1024 * 1024), workers=2)
    yield pool
    pool.close()


def test_a_manifest_read_in_a_worker_is_the_one_read_here(workers: ManifestWorkers) -> None:
    manifest, findings = workers.run(read_manifest, KOS, "kos")
    expected = read_bytes(KOS, "kos")
    assert manifest == expected.manifest
    assert findings == expected.findings


def test_the_jobs_own_errors_arrive_with_their_type(workers: ManifestWorkers) -> None:
    with pytest.raises(UnreadableManifest, match="neither a DICOM"):
        workers.run(read_manifest, b"hello", "junk")
    with pytest.raises(InvalidManifest) as caught:
        workers.run(read_manifest, KOS.replace(b".498.100", b".498.1x0"), "bad-uid")
    assert caught.value.path


def test_a_job_that_runs_too_long_is_stopped_and_the_pool_goes_on(
    workers: ManifestWorkers,
) -> None:
    started = time.monotonic()
    with pytest.raises(ManifestTooComplex, match="longer than 2 s"):
        workers.run(time.sleep, 60)
    assert time.monotonic() - started < 5
    assert workers.run(read_manifest, KOS, "kos")[0].study.uid


def test_a_job_over_the_memory_cap_fails_there(workers: ManifestWorkers) -> None:
    with pytest.raises(ManifestTooComplex, match="memory"):
        workers.run(bytearray, 1024 * 1024 * 1024)
    assert workers.run(read_manifest, KOS, "kos")[0].study.uid


def test_a_worker_that_dies_is_replaced(workers: ManifestWorkers) -> None:
    with pytest.raises(ManifestTooComplex):
        workers.run(os._exit, 3)
    assert workers.run(read_manifest, KOS, "kos")[0].study.uid


def test_a_long_job_does_not_block_the_other_worker(workers: ManifestWorkers) -> None:
    def sleep_long() -> None:
        with pytest.raises(ManifestTooComplex):
            workers.run(time.sleep, 60)

    sleeper = threading.Thread(target=sleep_long)
    sleeper.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert workers.run(read_manifest, KOS, "kos")[0].study.uid
    assert time.monotonic() - started < 1.5
    sleeper.join()
