"""Bounded memory and a bounded spool while a Responding Imaging Gateway bridges a large RAD-75
answer to a client that reads slowly (xcai-digest.md §9 item 14, §6.3 option E).

The gateway is its own process, in bridge mode: its one repository is a ``wado-rs`` source,
:class:`peers.instancesource.InstanceSource` in this test's event loop, which answers each
instance GET at once with one ~0.5 MiB Part 10 instance. A RAD-75 asks for 300 of them
(~150 MiB). The gateway must learn every outcome before it writes the envelope, so it holds
the instances in its disk spool, then streams the MTOM package to a client that reads at
about 100 MiB/s into a file: far slower than the spool can be read, so without backpressure
the gateway would buffer the difference.

Sampled from a thread every 20 ms: the gateway's RSS (psutil), and its spool as the summed
size of its descriptors that point into the spool folder (spool files are unlinked at once:
``/proc/<pid>/fd`` is the only view of them). The baseline is the gateway's RSS once it is
ready, so the first answer's one-time costs (lazy imports, pools grown to their working
size) count too. The 2,000-instance, ~1 GB figures come from the benchmark
(``python -m bench.xcai``), which is not run here.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import pytest

from peers.gateway import GatewayProcess, gateway_config, soap_url, xca_server, xca_spool
from peers.instancesource import Catalogue, InstanceSource
from peers.net import free_port
from tests.functional.soapclient import (
    EXPLICIT_LE,
    PARTIAL_SUCCESS,
    RAD75,
    SUCCESS,
    Doc,
    FileAnswer,
    SoapAnswer,
    rad_request,
    request_package,
)
from tests.functional.xdsi_schema import assert_valid_response

MIB = 1024 * 1024
COMMUNITY = "1.3.6.1.4.1.21367.13.70.95"
REPOSITORY = "1.3.6.1.4.1.21367.13.71.95.1"
COUNT = 300
CATALOGUE = Catalogue(512 * 1024, per_series=100)
INSTANCE_BYTES = len(CATALOGUE.part10(0))
SOPS = [CATALOGUE.document(n).sop_uid for n in range(COUNT)]
RSS_BOUND_MIB = 16  # measured: 5 to 7.5 MiB on the 2-CPU development host
READ_RATE = 100 * MIB  # bytes/s the client reads at
_READ_CHUNK = 64 * 1024


class Peaks:
    """Peak RSS of process ``pid`` and peak bytes it holds in files under ``spool``, sampled
    every 20 ms from a thread between ``__enter__`` and ``__exit__``."""

    def __init__(self, pid: int, spool: Path) -> None:
        self.process = psutil.Process(pid)
        self.fds = Path(f"/proc/{pid}/fd")
        self.prefix = str(spool.resolve()) + os.sep
        self.baseline = self.process.memory_info().rss
        self.rss = self.baseline
        self.spool = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def spooled(self) -> int:
        """Bytes held in spool files now (unlinked ones included)."""
        total = 0
        for entry in os.scandir(self.fds):
            try:
                if os.readlink(entry.path).startswith(self.prefix):
                    total += os.stat(entry.path).st_size
            except OSError:  # closed between the listing and the look
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.rss = max(self.rss, self.process.memory_info().rss)
            self.spool = max(self.spool, self.spooled())
            self.samples += 1
            time.sleep(0.02)

    @property
    def growth_mib(self) -> float:
        return (self.rss - self.baseline) / MIB

    def __enter__(self) -> Peaks:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    answer: SoapAnswer
    peaks: Peaks
    spool_after: int  # bytes still spooled once the answer is read


def documents(count: int) -> list[Doc]:
    found = (CATALOGUE.document(n) for n in range(count))
    return [
        Doc(
            study=where.study_uid,
            series=where.series_uid,
            document_uid=where.sop_uid,
            repository_id=REPOSITORY,
            home_community_id=f"urn:oid:{COMMUNITY}",
        )
        for where in found
    ]


def source_digests() -> Iterator[tuple[str, str]]:
    for n in range(COUNT):
        yield CATALOGUE.document(n).sop_uid, hashlib.sha256(CATALOGUE.part10(n)).hexdigest()


async def slow_rad75(url: str, docs: list[Doc], path: Path, *, rate: int | None) -> SoapAnswer:
    """RAD-75 for ``docs``; the answer streamed to ``path`` at ``rate`` bytes/s at most (None:
    as fast as it comes), then read in place (parts hashed, never loaded)."""
    envelope = rad_request(docs, [EXPLICIT_LE], action=RAD75, to=url)
    content_type, body = request_package(envelope, action=RAD75)
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(read_bufsize=_READ_CHUNK, timeout=timeout) as session,
        session.post(url, data=body, headers={"Content-Type": content_type}) as response,
    ):
        size = 0
        started = 0.0
        with path.open("wb") as file:
            async for chunk in response.content.iter_chunked(_READ_CHUNK):
                if not size:
                    started = time.monotonic()  # the envelope waits on the spool: not reading
                file.write(chunk)
                size += len(chunk)
                ahead = size / rate - (time.monotonic() - started) if rate else 0
                if ahead > 0:
                    await asyncio.sleep(ahead)
        saved = FileAnswer(
            http_status=response.status,
            content_type=response.headers.get("Content-Type", ""),
            path=path,
            size=size,
        )
    return await asyncio.to_thread(saved.read)


async def released(peaks: Peaks) -> int:
    """Bytes still spooled once the request is over: the gateway closes its spool files
    after its last write, which the client may see a moment before."""
    for _ in range(100):  # 5 s at most
        if not (held := peaks.spooled()):
            break
        await asyncio.sleep(0.05)
    return held


async def bridged(folder: Path, cap: int) -> Run:
    """One RAD-75 for :data:`COUNT` documents to a bridging gateway process whose
    ``max_request_bytes`` is ``cap``, read slowly, with its RSS and spool sampled."""
    spool = folder / "spool"
    async with InstanceSource(CATALOGUE) as source:
        config = gateway_config(
            home_community_id=COMMUNITY,
            port=free_port(),
            upstreams={"source": {"protocol": "wado-rs", "base_urls": [source.base_url]}},
            sources={REPOSITORY: "source"},
            xca=xca_server(spool=xca_spool(spool, max_request_bytes=cap)),
        )
        with GatewayProcess(folder, config) as gateway:
            url = soap_url(gateway)
            with Peaks(gateway.pid, spool) as peaks:
                answer = await slow_rad75(
                    url, documents(COUNT), folder / "answer.mime", rate=READ_RATE
                )
            spool_after = await released(peaks)
    assert peaks.samples > 10
    assert answer.http_status == 200 and answer.problem is None
    assert answer.closing_delimiter
    assert_valid_response(answer.body_child)
    returned = {
        d.document_uid: digest for d, digest in zip(answer.documents, answer.digests, strict=True)
    }
    expected = dict(source_digests())
    for sop, digest in returned.items():
        assert digest is not None and digest.sha256 == expected[sop], sop
    return Run(answer=answer, peaks=peaks, spool_after=spool_after)


@pytest.mark.xcai(14)
async def test_a_large_bridged_answer_to_a_slow_client_keeps_memory_and_spool_bounded(
    tmp_path: Path,
) -> None:
    total = COUNT * INSTANCE_BYTES
    cap = total + 8 * MIB
    run = await bridged(tmp_path, cap)
    assert run.answer.status == SUCCESS
    # every instance, in the order asked (each one's bytes checked by ``bridged``)
    assert [d.document_uid for d in run.answer.documents] == SOPS
    assert run.answer.errors == ()
    growth = run.peaks.growth_mib
    assert growth < RSS_BOUND_MIB, f"RSS grew by {growth:.1f} MiB bridging {total / MIB:.0f} MiB"
    # The instances went through the spool, most of them held at once (each file is closed
    # once its part is sent), which never passed its cap and is empty after.
    assert total / 2 <= run.peaks.spool <= cap, run.peaks.spool
    assert run.spool_after == 0


@pytest.mark.xcai(14)
async def test_documents_past_the_spool_cap_are_out_of_resources(tmp_path: Path) -> None:
    fits = 100
    cap = fits * INSTANCE_BYTES + INSTANCE_BYTES // 2
    run = await bridged(tmp_path, cap)
    answer = run.answer
    assert answer.status == PARTIAL_SUCCESS
    # Fetches run concurrently: a document that began to spool before the cap was reached can
    # be the one that passes it, so a few fewer than ``fits`` may make it.
    assert fits - 10 <= len(answer.documents) <= fits
    assert {e.code for e in answer.errors} == {"XDSRepositoryOutOfResources"}
    refused = [sop for sop in SOPS if any(f"Document {sop} " in e.context for e in answer.errors)]
    assert len(refused) == len(answer.errors)
    assert sorted(refused + [d.document_uid for d in answer.documents]) == sorted(SOPS)
    assert run.peaks.spool <= cap, run.peaks.spool
    assert run.spool_after == 0
    growth = run.peaks.growth_mib
    assert growth < RSS_BOUND_MIB, f"RSS grew by {growth:.1f} MiB"
