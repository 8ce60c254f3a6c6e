"""XCA-I benchmark: a 2,000-instance (~1 GB) RAD-69 answer to a slow client (issue 9).

Run with ``python -m bench.xcai`` (``--instances 200`` for a quick run). Topology, every
peer its own process on loopback::

    curl ──RAD-69──▶ B (initiating) ──RAD-75──▶ A (responding) ──WADO-RS──▶ source

The source is :mod:`bench.xcaisource` (one ~0.5 MiB Explicit VR Little Endian instance per
GET). A bridges: it fetches every instance into its spool (``max_request_bytes`` 1.5 GiB,
``max_bytes`` 2 GiB by default) before its envelope can be written, then streams the MTOM
answer to B, which relays it to the client. The client (http.client) reads at
``--limit-rate`` into a file; the answer is then checked: status Success, one part per instance, every part's
SHA-256 that of the bytes the source serves.

Sampled while the answer flows: the resident memory of A and B every 20 ms (psutil), and
each one's spool every 100 ms as the summed size of its open descriptors that point into
its spool directory (spool files are unlinked at once: ``/proc/<pid>/fd`` is the only view
of them). Reported: RSS before / peak / growth of each gateway, the spool's peak against
its per-request budget, throughput and time to first byte.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil

from bench.measure import Sampler
from bench.xcaisource import EXPLICIT_LE, Catalogue, start_source
from gateway.protocols.xca.envelope import build_request, parse_response
from gateway.protocols.xca.model import (
    Action,
    Addressing,
    DocumentRequest,
    RetrieveRequest,
    Status,
)
from gateway.protocols.xca.mtom import (
    MtomReader,
    MtomWriter,
    PartData,
    PartEnd,
    PartStart,
    RootPart,
)
from peers.gateway import (
    REPO,
    GatewayProcess,
    gateway_config,
    rad_upstream,
    soap_url,
    xca_server,
    xca_spool,
)
from peers.net import free_port

MB = 1_000_000
MiB = 1 << 20
GiB = 1 << 30
COMMUNITY_A = "1.3.6.1.4.1.21367.13.70.91"
COMMUNITY_B = "1.3.6.1.4.1.21367.13.70.92"
REPOSITORY_A = "1.3.6.1.4.1.21367.13.71.91.1"
MAX_ENVELOPE = 16 * MiB
_READ_BYTES = 64 * 1024


class SpoolSampler:
    """Peak bytes a process holds in spool files under ``directory``, sampled from a thread:
    the sizes of its descriptors whose target is in that directory (unlinked files too)."""

    def __init__(self, pid: int, directory: Path, *, interval_s: float = 0.1) -> None:
        self.fds = Path(f"/proc/{pid}/fd")
        self.prefix = str(directory.resolve()) + os.sep
        self.interval_s = interval_s
        self.peak = 0
        self.peak_files = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> tuple[int, int]:
        """(bytes, files) held now."""
        total = files = 0
        for entry in os.scandir(self.fds):
            try:
                if os.readlink(entry.path).startswith(self.prefix):
                    total += os.stat(entry.path).st_size
                    files += 1
            except OSError:  # closed between the listing and the look
                continue
        return total, files

    def _run(self) -> None:
        while not self._stop.is_set():
            total, files = self.sample()
            self.peak = max(self.peak, total)
            self.peak_files = max(self.peak_files, files)
            time.sleep(self.interval_s)

    def __enter__(self) -> SpoolSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def chain(folder: Path, base: str, args: argparse.Namespace) -> tuple[GatewayProcess, ...]:
    """Gateways A and B (not started), each with its spool in ``folder``."""

    def xca(name: str) -> dict[str, Any]:
        spool = xca_spool(
            folder / f"{name}-spool",
            max_bytes=args.max_bytes,
            max_request_bytes=args.max_request_bytes,
        )
        return xca_server(max_envelope_bytes=MAX_ENVELOPE, spool=spool)

    a = gateway_config(
        home_community_id=COMMUNITY_A,
        port=free_port(),
        upstreams={"source": {"protocol": "wado-rs", "base_urls": [base]}},
        sources={REPOSITORY_A: "source"},
        xca=xca("a"),
    )
    a_process = GatewayProcess(folder, a, name="a")
    # A answers only once every instance is spooled: give B's idle timeout room for that.
    upstream = rad_upstream("rad-75", [soap_url(a_process)], timeouts={"read_idle_s": 600})
    b = gateway_config(
        home_community_id=COMMUNITY_B,
        port=free_port(),
        upstreams={"a": upstream},
        communities={COMMUNITY_A: "a"},
        xca=xca("b"),
    )
    for config in (a, b):
        config["server"]["log_level"] = "WARNING"
    return a_process, GatewayProcess(folder, b, name="b")


def write_request(path: Path, url: str, catalogue: Catalogue, count: int) -> str:
    """A RAD-69 for instances 0…count-1 of A's repository, MTOM-packaged into ``path``;
    returns its Content-Type."""
    documents = []
    for n in range(count):
        where = catalogue.document(n)
        documents.append(
            DocumentRequest(
                study_uid=where.study_uid,
                series_uid=where.series_uid,
                repository_id=REPOSITORY_A,
                document_uid=where.sop_uid,
                home_community_id=f"urn:oid:{COMMUNITY_A}",
            )
        )
    request = RetrieveRequest(documents=tuple(documents), transfer_syntaxes=(EXPLICIT_LE,))
    envelope = build_request(Addressing(action=Action.RAD_69, to=url), request)
    writer = MtomWriter()
    path.write_bytes(writer.root(envelope) + writer.closing())
    return writer.content_type(Action.RAD_69)


def post(
    url: str, request: Path, content_type: str, answer: Path, limit: int | None
) -> dict[str, Any]:
    """POST ``request`` and save the answer to ``answer``, read at ``limit`` bytes/s at most
    (the socket's buffers then fill, and the gateways must hold back). Time to first byte
    is to the first byte of the answer's body, from the start of the request."""
    parts = urllib.parse.urlsplit(url)
    body = request.read_bytes()
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=600)
    started = time.monotonic()
    connection.request("POST", parts.path, body=body, headers={"Content-Type": content_type})
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"{url} answered {response.status}")
    size = 0
    ttfb = 0.0
    buffer = bytearray(_READ_BYTES)
    with answer.open("wb") as file:
        while count := response.readinto(buffer):
            if not size:
                ttfb = time.monotonic() - started
            file.write(buffer[:count])
            size += count
            if limit:
                ahead = size / limit - (time.monotonic() - started - ttfb)
                if ahead > 0:
                    time.sleep(ahead)
    total = time.monotonic() - started
    connection.close()
    return {
        "bytes": size,
        "ttfb_s": ttfb,
        "total_s": total,
        "mb_per_s": size / total / MB,
        "content_type": response.getheader("Content-Type", ""),
    }


def chunks(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as file:
        while data := file.read(block):
            yield data


def verify(answer: Path, content_type: str, catalogue: Catalogue, count: int) -> dict[str, Any]:
    """Status, part count and every part's SHA-256 against the source's bytes."""
    reader = MtomReader(content_type, max_root_bytes=MAX_ENVELOPE, max_parts=count + 1)
    digests: dict[str, str] = {}
    status: str = ""
    uid_of: dict[str, str] = {}
    hasher: Any = None
    current = ""
    for chunk in chunks(answer):
        for event in reader.feed(chunk):
            if isinstance(event, RootPart):
                _, response = parse_response(event.envelope, max_bytes=MAX_ENVELOPE)
                status = str(response.status)
                uid_of = {d.content_id or "": d.document_uid for d in response.documents}
            elif isinstance(event, PartStart):
                hasher, current = hashlib.sha256(), event.content_id
            elif isinstance(event, PartData):
                hasher.update(event.data)
            elif isinstance(event, PartEnd):
                digests[uid_of.get(current, current)] = hasher.hexdigest()
    reader.close()
    wrong = 0
    for n in range(count):
        sop = catalogue.document(n).sop_uid
        if digests.get(sop) != hashlib.sha256(catalogue.part10(n)).hexdigest():
            wrong += 1
    return {
        "status": status,
        "parts": len(digests),
        "parts_matching_sha256": count - wrong,
        "ok": status == Status.SUCCESS and len(digests) == count and wrong == 0,
    }


def run(args: argparse.Namespace, folder: Path, base: str) -> dict[str, Any]:
    """``args.answers`` measured answers of ``args.instances`` after a 10-instance warm-up:
    the first shows what a gateway's first large answer costs (allocator pools, audit
    batches grown to their working size), the later ones whether anything stays per answer
    (all are in the JSON; the table shows the first two)."""
    catalogue = Catalogue(args.instance_bytes, args.per_series)
    a, b = chain(folder, base, args)
    with ExitStack() as stack:
        for process in (a, b):
            stack.enter_context(process)
        url = soap_url(b)
        request = folder / "request.xml"
        answer = folder / "answer.mime"
        warm = write_request(request, url, catalogue, min(10, args.instances))
        post(url, request, warm, answer, None)  # imports, connections, journal
        content_type = write_request(request, url, catalogue, args.instances)
        runs = [
            _measured(args, folder, (a, b), url, request, content_type, answer, catalogue)
            for _ in range(max(2, args.answers))
        ]
    return {
        "instances": args.instances,
        "instance_bytes": args.instance_bytes,
        "limit_rate_bytes_per_s": args.limit_rate,
        "cpus": os.cpu_count(),
        **runs[0],
        "again": runs[1],
        "later": runs[2:],
    }


def _measured(  # noqa: PLR0917 - one call site, in order
    args: argparse.Namespace,
    folder: Path,
    gateways: tuple[GatewayProcess, GatewayProcess],
    url: str,
    request: Path,
    content_type: str,
    answer: Path,
    catalogue: Catalogue,
) -> dict[str, Any]:
    a, b = gateways
    before = {p.name: psutil.Process(p.pid).memory_info().rss for p in (a, b)}
    with (
        Sampler([a.pid]) as rss_a,
        Sampler([b.pid]) as rss_b,
        SpoolSampler(a.pid, folder / "a-spool") as spool_a,
        SpoolSampler(b.pid, folder / "b-spool") as spool_b,
    ):
        row = post(url, request, content_type, answer, args.limit_rate)
    after = {p.name: psutil.Process(p.pid).memory_info().rss for p in (a, b)}
    checked = verify(answer, row.pop("content_type"), catalogue, args.instances)
    answer.unlink()

    def memory(name: str, sampler: Sampler) -> dict[str, float]:
        return {
            "before_mb": before[name] / MB,
            "peak_mb": sampler.peak / MB,
            "after_mb": after[name] / MB,
            "growth_mb": (sampler.peak - before[name]) / MB,
        }

    return {
        **row,
        "rss": {"a": memory("a", rss_a), "b": memory("b", rss_b)},
        "spool": {
            "a_peak_bytes": spool_a.peak,
            "a_peak_files": spool_a.peak_files,
            "b_peak_bytes": spool_b.peak,
            "max_request_bytes": args.max_request_bytes,
            "max_bytes": args.max_bytes,
        },
        "verified": checked,
    }


def report(results: dict[str, Any]) -> None:
    rss, spool, checked = results["rss"], results["spool"], results["verified"]
    rate = results["limit_rate_bytes_per_s"]
    print(
        f"\nRAD-69 → B → RAD-75 → A → WADO-RS, {results['instances']:,d} instances of"
        f" {results['instance_bytes'] / MiB:.2f} MiB, client limited to"
        f" {'no limit' if not rate else f'{rate / MB:.0f} MB/s'} ({results['cpus']} CPUs):"
    )
    print(f"  answer             {results['bytes'] / MB:10.1f} MB  in {results['total_s']:.1f} s")
    print(f"  throughput         {results['mb_per_s']:10.1f} MB/s")
    print(f"  time to first byte {results['ttfb_s']:10.2f} s")
    for label, measured in (("", rss), (" again", results["again"]["rss"])):
        for name in ("a", "b"):
            row = measured[name]
            print(
                f"  RSS {name.upper()}{label:<15s}before {row['before_mb']:6.1f} MB,"
                f" peak {row['peak_mb']:6.1f} MB, growth {row['growth_mb']:+6.1f} MB"
                f" (after {row['after_mb']:6.1f} MB)"
            )
    print(
        f"  spool A peak       {spool['a_peak_bytes'] / MB:10.1f} MB in {spool['a_peak_files']:,d}"
        f" files; budget {spool['max_request_bytes'] / MB:.1f} MB per request,"
        f" {spool['max_bytes'] / MB:.1f} MB in all"
    )
    print(f"  spool B peak       {spool['b_peak_bytes'] / MB:10.1f} MB")
    print(
        f"  answer             {checked['status'].rsplit(':', 1)[-1]}, {checked['parts']:,d} parts,"
        f" {checked['parts_matching_sha256']:,d} with the source's SHA-256"
        f" -> {'OK' if checked['ok'] else 'FAILED'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="XCA-I: a large RAD-69 answer to a slow client.")
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--instance-bytes", type=int, default=512 * 1024)
    parser.add_argument("--per-series", type=int, default=500, help="instances per series")
    parser.add_argument(
        "--answers", type=int, default=2, help="measured answers, one after another (2 or more)"
    )
    parser.add_argument(
        "--limit-rate", type=int, default=100 * MB, help="client bytes/s, 0 for none"
    )
    parser.add_argument("--max-request-bytes", type=int, default=3 * GiB // 2)
    parser.add_argument("--max-bytes", type=int, default=2 * GiB)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "xcai.json")
    args = parser.parse_args()

    source, base = start_source(args.instance_bytes, args.per_series)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-xcai-") as folder:
            results = run(args, Path(folder), base)
    finally:
        source.terminate()
        source.wait()
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {args.out}")
    return 0 if results["verified"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
