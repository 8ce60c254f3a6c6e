"""Small-request rate against the number of worker processes (``serve --workers N``).

Run with ``python -m bench.workers`` (``--rounds``, ``--seconds``). One gateway process group
per round and worker count, alternating 1, 2, 1, 2…, in front of a static source
(:mod:`peers.faults` in its own process) serving a 2.6 kB CT instance; wrk (2 threads,
16 connections) asks for it through the gateway for ``--seconds`` after a 2 s warm-up.
Prints the requests per second of each round and the medians. On a machine with two cores
wrk and the source share them with the gateway's workers, so the ratio is a lower bound of
what a second core gives.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.sources import start_static
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port

OWN = "1.2.3.4"
LOCATION = "1.2.3.4.5"
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def rate(base: str, workers: int, seconds: int) -> float:
    """Requests per second through a gateway of ``workers`` workers."""
    port = free_port()
    config = gateway_config(
        home_community_id=OWN,
        port=port,
        upstreams={"source": {"protocol": "wado-rs", "base_urls": [base + "big/"]}},
        sources={LOCATION: "source"},
    )
    config["server"]["workers"] = workers
    config["server"]["rate_limit"] = {"requests_per_s": 1e6, "burst": 1_000_000}
    url = f"http://127.0.0.1:{port}/wado/homeCommunityId/{OWN}/RetrieveLocationUID/{LOCATION}"
    url += "/studies/1.2"
    with GatewayProcess(Path(tempfile.mkdtemp()), config, name=f"workers-{workers}"):
        time.sleep(1.0)  # every worker listening
        subprocess.run(["wrk", "-t1", "-c8", "-d2s", url], capture_output=True, check=False)
        out = subprocess.run(
            ["wrk", "-t2", "-c16", f"-d{seconds}s", url],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    found, failed = _RATE.search(out), _NON_2XX.search(out)
    if found is None or (failed and int(failed.group(1))):
        raise RuntimeError(f"wrk failed or saw errors:\n{out}")
    return float(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description="Small-request rate by worker count.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    source, base = start_static(parts=1, side=32)  # one 2.6 kB CT instance per answer
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(args.rounds):
            for workers, measured in rates.items():
                measured.append(rate(base, workers, args.seconds))
                print(f"{workers} worker(s): {measured[-1]:8.0f} requests/s", flush=True)
    finally:
        source.terminate()
    one, two = (statistics.median(rates[w]) for w in (1, 2))
    print(f"median: 1 worker {one:.0f}/s, 2 workers {two:.0f}/s, ratio {two / one:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
