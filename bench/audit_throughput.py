"""Small-request throughput of a gateway process: audit to a file against audit to rsyslog over
mutual TLS, side by side in one run (issue 12, item 5).

Run with ``python -m bench.audit_throughput``. Started once each: a scripted upstream in its
own process (``python -m peers.faults``: one tiny instance per retrieval), rsyslogd as the
Audit Record Repository (RFC 5425, client certificates, as in ``tests/functional/audit``),
and two gateway processes, identical but for their audit destination: a local file, or the
repository over TLS. ``wrk`` then loads them in turn, ``--rounds`` times each, alternating,
so both see the same machine; the figure per configuration is the median of its rounds.

Reported: requests per second per round and their median, the TLS/file ratio (of the medians,
and the median of each round's ratio), the gateway process's CPU time per request (user and
system, all its threads), rsyslog's while the TLS gateways ran (on a small machine the
repository competes with the gateway for the same cores), and the number of audit messages
each gateway journalled and sent (every one must reach its destination: the file, or
rsyslog). Needs ``wrk``, ``rsyslogd`` (with ``rsyslog-gnutls``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port
from peers.process import PeerProcess
from tests.functional.audit.rsyslogpeer import Pki, Rsyslog, make_pki

OWN = "5.6.7.8"
RLUID = "1.2.3.50"
STUDY = "1.2.826.0.1.3680043.10.4242.1"
_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
_TOTAL = re.compile(r"([0-9]+) requests in")
_FAILED = re.compile(r"Non-2xx or 3xx responses: ([0-9]+)")


def audit_section(kind: str, folder: Path, arr: Rsyslog, pki: Pki) -> dict[str, Any]:
    journal = {"directory": str(folder / f"{kind}-journal")}
    if kind.endswith("file"):
        return {"file": {"path": str(folder / f"{kind}.log")}, "journal": journal}
    return {
        "transport": "tls",
        "tls": {
            "host": "127.0.0.1",
            "port": arr.tcp_port,
            "ca_file": pki.ca_file,
            "cert_file": pki.client_cert,
            "key_file": pki.client_key,
        },
        "journal": journal,
        "stop_timeout_s": 30,
    }


class CheckoutGateway(GatewayProcess):
    """A gateway process run from another checkout of the project (``--baseline``)."""

    def __init__(self, folder: Path, config: dict[str, Any], *, name: str, checkout: Path):
        super().__init__(folder, config, name=name)
        self.checkout = checkout

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_file: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = {**(env or os.environ), "PYTHONPATH": str(self.checkout)}
        super().spawn(argv, log_file=log_file, cwd=self.checkout, env=env)


def gateway(
    kind: str,
    folder: Path,
    upstream_port: int,
    arr: Rsyslog,
    pki: Pki,
    *,
    checkout: Path | None = None,
) -> GatewayProcess:
    config = gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={
            "ids": {
                "protocol": "wado-rs",
                "base_urls": [f"http://127.0.0.1:{upstream_port}/big/"],
            }
        },
        sources={RLUID: "ids"},
        extra={"audit": audit_section(kind, folder, arr, pki)},
    )
    # One client (wrk) asks far more than the per-client default of 200 requests/s.
    config["server"]["rate_limit"] = {"requests_per_s": 1e6, "burst": 1000000}
    if checkout is not None:
        return CheckoutGateway(folder, config, name=f"gateway-{kind}", checkout=checkout)
    return GatewayProcess(folder, config, name=f"gateway-{kind}")


def load(url: str, *, seconds: float, connections: int) -> float:
    """``wrk`` on ``url``: requests per second. Raises when more than 1 % of the answers
    were not 2xx (a rare one is the machine's load: the upstream's accept queue)."""
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{round(seconds)}s",
            "-H",
            'Accept: multipart/related; type="application/dicom"',
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match, total = _RATE.search(out), _TOTAL.search(out)
    failed = _FAILED.search(out)
    if match is None or total is None:
        raise RuntimeError(f"wrk: unexpected output\n{out}")
    if failed is not None and int(failed.group(1)) * 100 > int(total.group(1)):
        raise RuntimeError(f"wrk: too many failed requests\n{out}")
    return float(match.group(1))


@dataclass
class Tally:
    """What one gateway configuration did over the rounds."""

    rates: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the gateway process, all threads
    served: float = 0.0
    journaled: float = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (say, the main branch) whose gateway is measured alongside",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed")
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp:
        folder = Path(tmp)
        pki = make_pki(folder / "pki")
        arr = Rsyslog(folder / "arr", pki)
        arr.start()
        upstream_port = free_port()
        source = PeerProcess()
        tiny = ("--side", "2", "--parts", "1")  # one 2 x 2 CT instance per retrieval
        source.spawn(
            [sys.executable, "-m", "peers.faults", "--port", str(upstream_port), *tiny],
            log_file=folder / "upstream.log",
            cwd=REPO,
        )
        time.sleep(1.0)  # the upstream listens within a second
        checkouts = {"": None} if args.baseline is None else {"": None, "base-": args.baseline}
        gateways = {
            f"{prefix}{kind}": gateway(
                f"{prefix}{kind}", folder, upstream_port, arr, pki, checkout=checkout
            )
            for prefix, checkout in checkouts.items()
            for kind in ("file", "tls")
        }
        tallies = {kind: Tally() for kind in gateways}
        try:
            for process in gateways.values():
                process.__enter__()
            arr_cpu_s = measure(gateways, tallies, arr, args)
        finally:
            for process in gateways.values():  # each sends what it journalled, then stops
                process.stop()
            source.stop()
            time.sleep(0.5)
            arr.stop()
        files = {kind: _lines(folder / f"{kind}.log") for kind in gateways if "file" in kind}
        received = len(arr.received())
    for kind, tally in tallies.items():
        print(
            f"{kind:9}: median {statistics.median(tally.rates):7.1f} requests/s over "
            f"{args.rounds} rounds of {args.seconds:.0f} s; gateway CPU "
            f"{tally.cpu_s / tally.served * 1e6:.0f} µs per request; "
            f"{tally.journaled:.0f} messages journalled"
            + (f", {files[kind]} in its file" if kind in files else "")
        )
    tls = [tally for kind, tally in tallies.items() if kind.endswith("tls")]
    per_request = arr_cpu_s / sum(t.served for t in tls) * 1e6
    print(f"rsyslog CPU while the TLS gateways ran: {per_request:.0f} µs per request")
    print(
        f"rsyslog stored {received} messages; "
        f"the TLS gateways journalled {sum(t.journaled for t in tls):.0f}"
    )
    for prefix in checkouts:
        _ratios(prefix, {kind: tally.rates for kind, tally in tallies.items()})


def measure(
    gateways: dict[str, GatewayProcess],
    tallies: dict[str, Tally],
    arr: Rsyslog,
    args: argparse.Namespace,
) -> float:
    """Warm up, then the rounds, alternating the order; returns rsyslog's CPU seconds while
    the TLS gateways ran."""
    urls = {
        kind: f"{process.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/{STUDY}"
        for kind, process in gateways.items()
    }
    for url in urls.values():  # warm up: connections, TLS to the repository
        load(url, seconds=1, connections=args.connections)
    repository = psutil.Process(arr.process.pid) if arr.process is not None else None
    arr_cpu_s = 0.0
    for round_ in range(args.rounds):
        for kind in gateways if round_ % 2 == 0 else reversed(gateways):
            tally = tallies[kind]
            process = psutil.Process(gateways[kind].pid)
            before, arr_before = _cpu(process), _cpu(repository)
            rate = load(urls[kind], seconds=args.seconds, connections=args.connections)
            tally.cpu_s += _cpu(process) - before
            tally.served += rate * args.seconds
            tally.rates.append(rate)
            if kind.endswith("tls"):
                arr_cpu_s += _cpu(repository) - arr_before
            print(f"round {round_ + 1} {kind:9}: {rate:8.1f} requests/s", flush=True)
    for kind, gateway_process in gateways.items():
        tallies[kind].journaled = _journaled(gateway_process)
    return arr_cpu_s


def _ratios(prefix: str, rates: dict[str, list[float]]) -> None:
    """TLS over file: of the medians, and the median of each round's ratio (the two were
    measured back to back, so a change of the machine's load between rounds cancels out)."""
    tls, file = rates[f"{prefix}tls"], rates[f"{prefix}file"]
    per_round = [t / f for t, f in zip(tls, file, strict=True)]
    print(
        f"{prefix}tls / {prefix}file = {statistics.median(tls) / statistics.median(file):.3f} "
        f"(medians), {statistics.median(per_round):.3f} (median of the rounds' ratios: "
        + ", ".join(f"{r:.2f}" for r in per_round)
        + ")"
    )


def _cpu(process: psutil.Process | None) -> float:
    """User and system CPU seconds of ``process`` and its threads so far."""
    if process is None:
        return 0.0
    times = process.cpu_times()
    return float(times.user + times.system)


def _journaled(process: GatewayProcess) -> float:
    total = 0.0
    for event in ("begin-transferring", "instances-transferred", "instances-accessed"):
        # (a baseline without the event has no such sample: 0)
        value = process.metric(f'mado_gateway_audit_journaled_total{{event="{event}"}}')
        total += value or 0.0
    return total


def _lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) if path.exists() else 0


if __name__ == "__main__":
    main()
