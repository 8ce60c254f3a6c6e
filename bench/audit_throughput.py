"""Small-request throughput of a gateway process: audit to a file against audit to rsyslog over
mutual TLS, side by side in one run (issue 12, item 5).

Run with ``python -m bench.audit_throughput``. Started once each: a scripted upstream in its
own process (``python -m peers.faults``: one tiny instance per retrieval), rsyslogd as the
Audit Record Repository (RFC 5425, client certificates, as in ``tests/functional/audit``),
and two gateway processes, identical but for their audit destination: a local file, or the
repository over TLS. ``wrk`` then loads them in turn, ``--rounds`` times each, alternating,
so both see the same machine; the figure per configuration is the median of its rounds.

Reported: requests per second per round and their median, the TLS/file ratio, and the
number of audit messages each gateway journalled and sent (every one must reach its
destination: the file, or rsyslog). Needs ``wrk``, ``rsyslogd`` (with ``rsyslog-gnutls``).
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
from pathlib import Path
from typing import Any

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
        source.spawn(
            [
                sys.executable,
                "-m",
                "peers.faults",
                "--port",
                str(upstream_port),
                "--side",
                "2",
                "--parts",
                "1",
            ],
            log_file=folder / "upstream.log",
            cwd=REPO,
        )
        time.sleep(1.0)  # the upstream listens within a second
        gateways = {
            kind: gateway(kind, folder, upstream_port, arr, pki) for kind in ("file", "tls")
        }
        if args.baseline is not None:
            for kind in ("file", "tls"):
                gateways[f"base-{kind}"] = gateway(
                    f"base-{kind}", folder, upstream_port, arr, pki, checkout=args.baseline
                )
        rates: dict[str, list[float]] = {kind: [] for kind in gateways}
        try:
            for process in gateways.values():
                process.__enter__()
            urls = {
                kind: f"{process.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}"
                f"/studies/{STUDY}"
                for kind, process in gateways.items()
            }
            for url in urls.values():  # warm up: connections, TLS to the repository
                load(url, seconds=1, connections=args.connections)
            for round_ in range(args.rounds):
                for kind in gateways if round_ % 2 == 0 else reversed(gateways):
                    rate = load(urls[kind], seconds=args.seconds, connections=args.connections)
                    rates[kind].append(rate)
                    print(f"round {round_ + 1} {kind:4}: {rate:8.1f} requests/s", flush=True)
            journaled = {kind: _journaled(p) for kind, p in gateways.items()}
        finally:
            for process in gateways.values():
                process.stop()
            source.stop()
        time.sleep(0.5)
        arr.stop()
        files = {kind: _lines(folder / f"{kind}.log") for kind in gateways if "file" in kind}
        received = len(arr.received())
    medians = {kind: statistics.median(values) for kind, values in rates.items()}
    for kind in gateways:
        print(
            f"{kind:9}: median {medians[kind]:7.1f} requests/s over {args.rounds} rounds "
            f"of {args.seconds:.0f} s; {journaled[kind]:.0f} messages journalled"
            + (f", {files[kind]} in its file" if kind in files else "")
        )
    tls_total = sum(journaled[kind] for kind in gateways if "tls" in kind)
    print(f"rsyslog stored {received} messages; the TLS gateways journalled {tls_total:.0f}")
    print(f"tls / file = {medians['tls'] / medians['file']:.3f}")
    if args.baseline is not None:
        print(f"baseline tls / file = {medians['base-tls'] / medians['base-file']:.3f}")


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
