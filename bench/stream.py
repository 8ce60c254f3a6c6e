"""Streaming benchmark: a 1 GiB study through the gateway and directly, in alternating runs.

Run with ``make bench`` (or ``python -m bench.stream``). The source is ``peers.faults`` in its
own process (2048 CT instances of 512 x 512 16-bit pixels, 0.5 MiB each, made once, so the
source is never the bottleneck; its parts carry no Content-Length, so the gateway's part
scanner works the hard way); the
client is curl, which reports time to first byte and speed itself and can read slowly
(``--limit-rate``). The gateway's resident memory is sampled every 20 ms with psutil.

Reported: MB/s and time to first byte, gateway vs direct (median of alternating runs); the
gateway's peak RSS while a client reads a 1 GiB study at a quarter of the direct speed; and
the growth of that peak between a 100 MiB and a 1 GiB study.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil

from bench.measure import Sampler
from bench.sources import start_static
from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port

MB = 1_000_000


def curl(url: str, limit_bytes_per_s: int | None = None) -> dict[str, float]:
    command = [
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %{time_starttransfer} %{time_total}",
    ]
    if limit_bytes_per_s:
        command += ["--limit-rate", str(limit_bytes_per_s)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout.split()
    status, size, ttfb, total = int(out[0]), int(out[1]), float(out[2]), float(out[3])
    if status != 200:
        raise RuntimeError(f"{url} answered {status}")
    return {"bytes": size, "ttfb_s": ttfb, "total_s": total, "mb_per_s": size / total / MB}


def main() -> int:
    parser = argparse.ArgumentParser(description="Streaming benchmark of mado-gateway.")
    parser.add_argument("--runs", type=int, default=3, help="alternating runs per path (default 3)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "stream.json")
    args = parser.parse_args()

    big_source, big_base = start_static(parts=2048)  # 1 GiB of parts
    small_source, small_base = start_static(parts=200)  # 100 MiB
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = gateway_config(
                home_community_id="5.6.7.8",
                port=free_port(),
                upstreams={
                    "big": {"protocol": "wado-rs", "base_urls": [big_base + "big/"]},
                    "small": {"protocol": "wado-rs", "base_urls": [small_base + "big/"]},
                },
                sources={"1.2.1": "big", "1.2.2": "small"},
            )
            config["server"]["log_level"] = "WARNING"
            with GatewayProcess(Path(folder), config, name="bench-gateway") as gateway:
                results = run(gateway, big_base, args.runs)
    finally:
        for process in (big_source, small_source):
            process.terminate()
            process.wait()

    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {args.out}")
    return 0


def run(gateway: GatewayProcess, big_base: str, runs: int) -> dict[str, object]:
    study = "studies/1.2.3.4"
    through = {
        rluid: f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/{rluid}/{study}"
        for rluid in ("1.2.1", "1.2.2")
    }
    direct_url = big_base + "big/" + study
    curl(through["1.2.1"])  # warm-up: connections, imports, page cache
    gateway_process = psutil.Process(gateway.pid)
    direct, via = [], []
    for _ in range(runs):
        direct.append(curl(direct_url))
        before = gateway_process.cpu_times()
        row = curl(through["1.2.1"])
        after = gateway_process.cpu_times()
        cpu_s = (after.user - before.user) + (after.system - before.system)
        row["gateway_cpu_s_per_gib"] = cpu_s / (row["bytes"] / 2**30)
        via.append(row)

    direct_speed = statistics.median(r["mb_per_s"] for r in direct) * MB
    quarter = int(direct_speed / 4)
    memory = {}
    for label, rluid in (("100MiB", "1.2.2"), ("1GiB", "1.2.1")):
        baseline = psutil.Process(gateway.pid).memory_info().rss
        with Sampler([gateway.pid]) as sampler:
            slow = curl(through[rluid], limit_bytes_per_s=quarter)
        memory[label] = {"baseline_rss_mb": baseline / MB, "peak_rss_mb": sampler.peak / MB, **slow}
    return {
        "direct": direct,
        "gateway": via,
        "slow_client_bytes_per_s": quarter,
        "memory": memory,
    }


def report(results: dict[str, object]) -> None:
    direct = results["direct"]
    via = results["gateway"]
    assert isinstance(direct, list)
    assert isinstance(via, list)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print("\n1 GiB study (2048 CT instances of 0.5 MiB), alternating runs, medians:")
    print(
        f"  direct           {med(direct, 'mb_per_s'):8.1f} MB/s   time to first byte {med(direct, 'ttfb_s') * 1000:7.2f} ms"
    )
    print(
        f"  through gateway  {med(via, 'mb_per_s'):8.1f} MB/s   time to first byte {med(via, 'ttfb_s') * 1000:7.2f} ms"
    )
    cpu = med(via, "gateway_cpu_s_per_gib")
    print(f"  gateway CPU      {cpu:8.3f} s per GiB relayed (user + system)")
    memory = results["memory"]
    assert isinstance(memory, dict)
    rate = results["slow_client_bytes_per_s"]
    assert isinstance(rate, int)
    print(f"\nslow client at a quarter of the direct speed ({rate / MB:.0f} MB/s):")
    for label, row in memory.items():
        print(
            f"  {label:7s} peak RSS {row['peak_rss_mb']:6.1f} MB (idle before: {row['baseline_rss_mb']:5.1f} MB), {row['mb_per_s']:6.1f} MB/s"
        )
    growth = memory["1GiB"]["peak_rss_mb"] - memory["100MiB"]["peak_rss_mb"]
    print(f"  peak RSS growth from 100 MiB to 1 GiB: {growth:+.1f} MB")


if __name__ == "__main__":
    sys.exit(main())
