"""Audit journal benchmark: what journalling costs the request path, and whether it blocks.

Run with ``python -m bench.audit_journal``. A real :class:`~gateway.audit.service.AuditService`
(two file destinations, so two senders read, decode and render in their threads, and the
group-commit thread flushes with real ``fdatasync``) runs in an event loop; the loop calls
``observe`` (build the messages, encode the neutral record, one ``write(2)``) as the
gateway's relay does before its terminating chunk, and times every call. With
``--pressure`` a thread meanwhile writes and flushes large files on the same file system,
so the kernel's writeback runs concurrently with the appends (the case where a buffered
``write(2)`` could be throttled).

Reported: ``observe`` and ``fdatasync`` latency percentiles (µs), the number of flushes
(group commits) against the number of appends, and the event loop's largest stall.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.audit.service import AuditService
from gateway.audit.settings import parse_audit_settings
from gateway.exchange import Attempt, Exchange, InstanceSeen, Outcome
from routing.ids import HomeCommunityId
from routing.model import Identity

IDENTITY = Identity(home_community_id=HomeCommunityId("5.6.7.8"), audit_source_id="bench")


def relayed(index: int) -> Exchange:
    """A completed retrieval of one CT instance of study ``1.2.9.{index}``."""
    study = f"1.2.9.{index}"
    exchange = Exchange(request_id=f"r{index}", method="GET", path="/wado/x", client="127.0.0.1")
    exchange.route_kind = "source"
    leg = exchange.open_leg("ids-a")
    leg.url = f"https://ids.a.test/wado-rs/studies/{study}"
    exchange.home_community_id = "5.6.7.8"
    exchange.study_uid = study
    leg.attempts.append(Attempt(base_url="https://ids.a.test/wado-rs/", status=200))
    exchange.status = 200
    exchange.outcome = Outcome.COMPLETE
    for identity in (
        InstanceSeen(
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            sop_instance_uid=f"{study}.1.1",
            study_uid=study,
            series_uid=f"{study}.1",
            patient_id="PAT-1",
            patient_id_issuer="1.2.3.4.9",
            patient_name=None,
        ),
    ):
        exchange.note_instance(identity)
    exchange.finish()
    return exchange


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(fraction: float) -> float:
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    return (
        f"n={len(ordered)} p50={at(0.5):.0f} p99={at(0.99):.0f} "
        f"p99.9={at(0.999):.0f} max={ordered[-1]:.0f} µs"
    )


def pressure(folder: Path, stop: threading.Event) -> None:
    """Dirty and flush 32 MiB at a time, to keep writeback busy on the same disk."""
    block = os.urandom(1 << 20)
    path = folder / "pressure.bin"
    while not stop.is_set():
        with open(path, "wb") as handle:
            for _ in range(32):
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
    path.unlink(missing_ok=True)


async def run(count: int, folder: Path, with_pressure: bool) -> None:
    flushes: list[float] = []
    real_fdatasync = os.fdatasync

    def timed_fdatasync(fd: int) -> None:
        started = time.perf_counter()
        real_fdatasync(fd)
        flushes.append((time.perf_counter() - started) * 1e6)

    setattr(os, "fdatasync", timed_fdatasync)  # noqa: B010 - the journal looks it up per call
    settings = parse_audit_settings(
        {
            "audit": {
                "destinations": [
                    {"name": n, "transport": "file", "file": {"path": str(folder / f"{n}.log")}}
                    for n in ("one", "two")
                ],
                "journal": {"directory": str(folder / "journal")},
                "stop_timeout_s": 120,
            }
        },
        source="bench",
    )
    service = AuditService(settings, IDENTITY, registry=CollectorRegistry())
    await service.start()
    stop = threading.Event()
    dirtier = threading.Thread(target=pressure, args=(folder, stop), daemon=True)
    if with_pressure:
        dirtier.start()
    exchanges = [relayed(n) for n in range(count)]
    observe: list[float] = []
    stalls: list[float] = []
    for index, exchange in enumerate(exchanges):
        started = time.perf_counter()
        service.observe(exchange)
        observe.append((time.perf_counter() - started) * 1e6)
        if index % 20 == 0:  # a relay yields to the loop between exchanges
            before = time.perf_counter()
            await asyncio.sleep(0)
            stalls.append((time.perf_counter() - before) * 1e6)
    stop.set()
    await service.stop()
    setattr(os, "fdatasync", real_fdatasync)  # noqa: B010
    if with_pressure:
        dirtier.join()
    print(f"observe (build + encode + append): {percentiles(observe)}")
    print(f"  mean {statistics.fmean(observe):.0f} µs")
    print(f"fdatasync (group-commit thread):   {percentiles(flushes or [0.0])}")
    print(f"appends {count}, flushes {len(flushes)}")
    print(f"loop round trip between exchanges: {percentiles(stalls)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--pressure", action="store_true", help="concurrent writeback load")
    parser.add_argument("--dir", help="where to put the journal (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        asyncio.run(run(args.count, Path(folder), args.pressure))


if __name__ == "__main__":
    main()
