"""Memory per exchange against the number of instances: a study of many small instances.

Run with ``python -m bench.instances --instances 20000 --instance-bytes 2048``. The source is
this module in its own process (``--serve``): one study of N distinct CT instances (one
:func:`peers.studies.make_study` instance, its SOP Instance UID swapped for a numbered one of
the same length per part, a new series every ``--per-series`` instances, one patient), every
part a Part 10 object of about ``--instance-bytes`` bytes with its own ``Content-Length``, as
Orthanc sends them. The gateway is a real process (``python -m gateway serve``, audit on);
the client is curl at full speed. The gateway's resident memory is sampled every 10 ms.

Reported, for N/10 and for N instances: the gateway's RSS before the request (after a
warm-up relay), its peak while relaying and the growth between the two. What grows with the
instance count is what the exchange keeps per instance.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from bench.measure import Sampler
from bench.sources import start_server
from bench.stream import curl
from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port
from peers.studies import make_study

MB = 1_000_000
BOUNDARY = "bench-instances-5c1e"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def template(size: int) -> tuple[bytes, bytes, bytes]:
    """(a CT instance of about ``size`` bytes, its SOP Instance UID, its Series UID)."""
    one_pixel = make_study(seed="bench", series_count=1, instances_per_series=1, rows=1, columns=1)
    overhead = len(one_pixel.instances[0].part10) - 2
    columns = max(1, (size - overhead) // 2)  # 16-bit pixels, one row
    study = make_study(
        seed="bench", series_count=1, instances_per_series=1, rows=1, columns=columns
    )
    instance = study.instances[0]
    return instance.part10, instance.sop_instance_uid.encode(), instance.series_uid.encode()


def _numbered(uid: bytes, prefix: bytes, n: int) -> bytes:
    """A UID as long as ``uid``, ``prefix`` then ``n`` zero-padded: a same-length swap."""
    return prefix + b"%0*d" % (len(uid) - len(prefix), n)


def parts(count: int, size: int, per_series: int) -> tuple[int, Iterator[bytes]]:
    """(body length, an iterator of body blocks of about 64 KiB): ``count`` instances, each
    with its own SOP Instance UID, a new Series UID every ``per_series``."""
    part10, sop, series = template(size)
    head = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\nContent-Length: {len(part10)}\r\n\r\n"
    one = head.encode() + part10 + b"\r\n"
    tail = f"--{BOUNDARY}--\r\n".encode()

    def blocks() -> Iterator[bytes]:
        block = bytearray()
        for n in range(count):
            block += one.replace(sop, _numbered(sop, b"2.25.1", n)).replace(
                series, _numbered(series, b"2.25.2", n // per_series)
            )
            if len(block) >= 65536:
                yield bytes(block)
                block.clear()
        yield bytes(block) + tail

    return len(one) * count + len(tail), blocks()


async def serve(port: int, size: int, per_series: int) -> None:
    """Answer ``GET /studies/{count}`` with a study of ``count`` instances."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                count = int(path.rstrip("/").rsplit("/", 1)[-1])
                length, blocks = parts(count, size, per_series)
                writer.write(
                    (
                        "HTTP/1.1 200 OK\r\n"
                        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {length}\r\n\r\n"
                    ).encode()
                )
                for block in blocks:
                    writer.write(block)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def start_source(size: int, per_series: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "bench.instances", "--serve", str(port)]
    command += ["--instance-bytes", str(size), "--per-series", str(per_series)]
    return start_server(command, port, "studies/1", timeout_s=10)


def main() -> int:
    parser = argparse.ArgumentParser(description="Gateway memory against instance count.")
    parser.add_argument("--instances", type=int, default=20000)
    parser.add_argument("--instance-bytes", type=int, default=2048)
    parser.add_argument("--per-series", type=int, default=500, help="instances per series")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "instances.json")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.instance_bytes, args.per_series))
        return 0

    source, base = start_source(args.instance_bytes, args.per_series)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = gateway_config(
                home_community_id="5.6.7.8",
                port=free_port(),
                upstreams={"source": {"protocol": "wado-rs", "base_urls": [base]}},
                sources={"1.2.1": "source"},
            )
            config["server"]["log_level"] = "WARNING"
            with GatewayProcess(Path(folder), config, name="bench-instances") as gateway:
                results = run(gateway, args.instances)
    finally:
        source.terminate()
        source.wait()
    results["instance_bytes"] = args.instance_bytes
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {args.out}")
    return 0


def run(gateway: GatewayProcess, instances: int) -> dict[str, object]:
    def url(count: int) -> str:
        return (
            f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.1/"
            f"studies/{count}"  # the source reads the count from the path
        )

    process = psutil.Process(gateway.pid)
    curl(url(max(1, instances // 100)))  # warm-up: imports, connections, audit journal
    rows = {}
    for count in (instances // 10, instances):
        baseline = process.memory_info().rss
        with Sampler([gateway.pid], interval_s=0.01) as sampler:
            row = curl(url(count))
        after = process.memory_info().rss
        rows[str(count)] = {
            "baseline_rss_mb": baseline / MB,
            "peak_rss_mb": sampler.peak / MB,
            "after_rss_mb": after / MB,
            "growth_mb": (sampler.peak - baseline) / MB,
            **row,
        }
    return {"runs": rows}


def report(results: dict[str, object]) -> None:
    rows = results["runs"]
    assert isinstance(rows, dict)
    print(f"\nstudies of small instances ({results['instance_bytes']} bytes each), one request:")
    for count, row in rows.items():
        print(
            f"  {int(count):7,d} instances  RSS before {row['baseline_rss_mb']:6.1f} MB,"
            f" peak {row['peak_rss_mb']:6.1f} MB, growth {row['growth_mb']:+6.1f} MB"
            f"  ({row['bytes'] / MB:6.1f} MB in {row['total_s']:.2f} s)"
        )


if __name__ == "__main__":
    sys.exit(main())
