"""Relay benchmark: direct, nginx (default and tuned), one gateway and two, side by side.

Run with ``make bench`` (``python -m bench.relay``; ``--quick`` for a short run). One run
sets up, on loopback:

* Orthanc (Debian's, with DICOMweb) holding a study of ``--instances`` CT instances of 0.5 MiB
  (2000: about 1.05 GB; made and stored once per run) and a one-instance study of 2.6 kB;
  the same Orthanc over HTTPS behind an nginx of its own (certificates from trustme; Orthanc's
  own HTTPS is broken on Debian, see :mod:`bench.sources`);
* the static source (:mod:`peers.faults`): 1 GiB of 0.5 MiB parts from memory;
* nginx ``default`` and ``tuned`` (``proxy_buffer_size 256k``) in front of all three
  (:mod:`bench.nginx`), one worker each;
* a gateway process in front of all three (over HTTPS for the HTTPS Orthanc: TLS on both
  legs), audit trail and access log on as an operator runs it, and a second, initiating
  gateway in front of the first: the two-gateway chain of a real cross-community retrieval.

Then, for ``--runs`` rounds after a warm-up round, each probe against each target, the order
of the targets rotated every round (alternating runs: a noisy neighbour spreads over all):

=========  =================================================  ==============================
probe      what                                               figures
=========  =================================================  ==============================
study      the Orthanc study, one client (curl)               MB/s, relay CPU-s per GiB
static     1 GiB from the static source, one client           MB/s, relay CPU-s per GiB
tls        the study over HTTPS, both legs                    MB/s, relay CPU-s per GiB
small      the 2.6 kB instance, 8 concurrent clients (wrk)    CPU ms per request, p50, p99
large      a 0.5 MB instance of the study, 8 concurrent       CPU ms per request, p50, p99
=========  =================================================  ==============================

Relay CPU is user + system time of the relay's processes (nginx: master and worker; the
chain: both gateways, also reported apart). Peak RSS is sampled during every probe. Last, the
one gateway's peak RSS while a client reads the study at a quarter of the direct speed.
Figures are medians over the rounds with their range; raw figures go to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import MB, bulk, small
from bench.nginx import NginxProxy, TlsFiles
from bench.report import report
from bench.sources import (
    Certificates,
    StoredStudy,
    certificates,
    start_static,
    store_study,
)
from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port
from peers.orthanc import OrthancServer

__all__ = ["PROBES", "Target", "main"]

HOME = "1.3.6.1.4.1.21367.13.70.1"  # the responding gateway's community
INITIATING = "1.3.6.1.4.1.21367.13.70.2"
RLUID_ORTHANC = "1.3.6.1.4.1.21367.13.70.1.200"
RLUID_STATIC = "1.3.6.1.4.1.21367.13.70.1.201"
STATIC_PATH = "studies/1.2.3.4"
PROBES = ("study", "static", "tls", "small", "large")


@dataclass(kw_only=True)
class Target:
    """Where each probe goes for one target, and the processes that relay it."""

    name: str
    urls: dict[str, str]  # probe -> URL (a probe a target lacks is absent)
    pids: Callable[[str], list[int]] = lambda probe: []  # probe -> relay pids
    process_names: tuple[str, ...] = ()
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def main() -> int:
    parser = argparse.ArgumentParser(description="Relay benchmark of mado-gateway against nginx.")
    parser.add_argument("--quick", action="store_true", help="a short run (about two minutes)")
    parser.add_argument("--runs", type=int, help="rounds after the warm-up (default 5, quick 2)")
    parser.add_argument("--instances", type=int, help="study size in 0.5 MiB instances (2000)")
    parser.add_argument("--wrk-seconds", type=float, help="per small-request probe (5, quick 2)")
    parser.add_argument("--probes", default=",".join(PROBES), help="comma-separated subset")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "relay.json")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    instances = args.instances or (300 if args.quick else 2000)
    wrk_s = args.wrk_seconds or (2.0 if args.quick else 5.0)
    probes = [p for p in args.probes.split(",") if p]
    if unknown := set(probes) - set(PROBES):
        parser.error(f"unknown probes: {sorted(unknown)}")

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mado-bench-") as tmp, _setup(
        Path(tmp), instances
    ) as (targets, study, certs):
        print(f"set up in {time.monotonic() - started:.0f} s; {runs} rounds", flush=True)
        for round_ in range(runs + 1):  # round 0 is the warm-up
            order = targets[round_ % len(targets) :] + targets[: round_ % len(targets)]
            for probe in probes:
                for target in order:
                    if probe not in target.urls:
                        continue
                    row = _probe(probe, target, certs.ca, wrk_s)
                    if round_:
                        target.results.setdefault(probe, []).append(row)
            print(f"round {round_}{' (warm-up)' if not round_ else ''} done "
                  f"at {time.monotonic() - started:.0f} s", flush=True)
        memory = _slow_client(targets)
    results = {
        "study": {"instances": study.instances, "bytes": study.bytes},
        "small_instance_bytes": study.small.size,
        "large_instance_bytes": study.large.size,
        "runs": runs,
        "wrk_seconds": wrk_s,
        "targets": {
            t.name: {"processes": list(t.process_names), "results": t.results} for t in targets
        },
        "slow_client": memory,
        "elapsed_s": time.monotonic() - started,
    }
    report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"\nraw figures: {args.out}")
    return 0


def _probe(probe: str, target: Target, ca: Path, wrk_s: float) -> dict[str, Any]:
    url, pids = target.urls[probe], target.pids(probe)
    if probe in ("small", "large"):
        return small(url, pids, duration_s=wrk_s)
    return bulk(url, pids, cafile=ca if probe == "tls" else None)


def _slow_client(targets: list[Target]) -> dict[str, Any]:
    """The one gateway's peak RSS while a client reads the study at a quarter of the direct
    speed (the upstream outruns the client: backpressure keeps memory bounded)."""
    direct = next(t for t in targets if t.name == "direct")
    one = next(t for t in targets if t.name == "gateway")
    speeds = [row["mb_per_s"] for row in direct.results.get("study", [])]
    speed = sorted(speeds)[len(speeds) // 2] if speeds else 1000.0
    rate = int(speed * MB / 4)
    row = bulk(one.urls["study"], one.pids("study"), limit_bytes_per_s=rate)
    return {"rate_bytes_per_s": rate, **row}


@contextlib.contextmanager
def _setup(
    tmp: Path, instances: int
) -> Iterator[tuple[list[Target], StoredStudy, Certificates]]:
    certs = certificates(tmp)
    tls_files = TlsFiles(cert=certs.cert, key=certs.key, ca=certs.ca)
    static_process, static_base = start_static(parts=instances)
    try:
        with contextlib.ExitStack() as stack:
            orthanc = stack.enter_context(OrthancServer(tmp / "orthanc", name="bench"))
            t0 = time.monotonic()
            study = store_study(orthanc, instances)
            print(f"stored {instances} instances ({study.bytes / MB:.0f} MB) in Orthanc "
                  f"in {time.monotonic() - t0:.0f} s", flush=True)
            origin = stack.enter_context(
                NginxProxy(tmp, "origin", orthanc=orthanc.url + "/", tls=tls_files)
            )
            orthanc_tls = origin.url + "/dicom-web/"
            static_url = static_base + "big/"
            targets = [_direct(orthanc, orthanc_tls, static_url, study)]
            for variant in ("default", "tuned"):
                proxy = stack.enter_context(
                    NginxProxy(
                        tmp,
                        variant,
                        orthanc=orthanc.dicomweb_url,
                        static=static_url,
                        orthanc_tls=orthanc_tls,
                        tls=tls_files,
                    )
                )
                targets.append(_nginx(proxy, study))
            responding = stack.enter_context(
                GatewayProcess(tmp, _responding(orthanc, static_url), name="responding")
            )
            initiating = stack.enter_context(
                GatewayProcess(tmp, _initiating(responding), name="initiating")
            )
            over_tls = stack.enter_context(
                GatewayProcess(
                    tmp,
                    _over_tls(orthanc_tls, certs),
                    name="tls-gateway",
                    client_ssl=ssl.create_default_context(cafile=str(certs.ca)),
                )
            )
            targets.append(_gateway("gateway", responding, over_tls, study))
            targets.append(_chain(initiating, responding, study))
            yield targets, study, certs
    finally:
        static_process.terminate()
        static_process.wait()


def _xc(gateway: GatewayProcess, rluid: str, path: str) -> str:
    return f"{gateway.endpoint}homeCommunityId/{HOME}/RetrieveLocationUID/{rluid}/{path}"


def _direct(
    orthanc: OrthancServer, orthanc_tls: str, static_url: str, study: StoredStudy
) -> Target:
    return Target(
        name="direct",
        urls={
            "study": orthanc.dicomweb_url + study.path,
            "static": static_url + STATIC_PATH,
            "tls": orthanc_tls + study.path,
            "small": orthanc.dicomweb_url + study.small.path,
            "large": orthanc.dicomweb_url + study.large.path,
        },
    )


def _nginx(proxy: NginxProxy, study: StoredStudy) -> Target:
    return Target(
        name=f"nginx-{proxy.variant}",
        urls={
            "study": f"{proxy.url}/orthanc/{study.path}",
            "static": f"{proxy.url}/static/{STATIC_PATH}",
            "tls": f"{proxy.tls_url}/orthanc/{study.path}",
            "small": f"{proxy.url}/orthanc/{study.small.path}",
            "large": f"{proxy.url}/orthanc/{study.large.path}",
        },
        pids=lambda probe: proxy.pids,
        process_names=("nginx",),
    )


def _gateway(
    name: str, gateway: GatewayProcess, over_tls: GatewayProcess, study: StoredStudy
) -> Target:
    """One gateway; the TLS probe goes to its twin configured for HTTPS on both legs."""
    return Target(
        name=name,
        urls={
            "study": _xc(gateway, RLUID_ORTHANC, study.path),
            "static": _xc(gateway, RLUID_STATIC, STATIC_PATH),
            "tls": _xc(over_tls, RLUID_ORTHANC, study.path),
            "small": _xc(gateway, RLUID_ORTHANC, study.small.path),
            "large": _xc(gateway, RLUID_ORTHANC, study.large.path),
        },
        pids=lambda probe: [over_tls.pid if probe == "tls" else gateway.pid],
        process_names=("gateway",),
    )


def _chain(initiating: GatewayProcess, responding: GatewayProcess, study: StoredStudy) -> Target:
    return Target(
        name="chain",
        urls={
            "study": _xc(initiating, RLUID_ORTHANC, study.path),
            "static": _xc(initiating, RLUID_STATIC, STATIC_PATH),
            "small": _xc(initiating, RLUID_ORTHANC, study.small.path),
            "large": _xc(initiating, RLUID_ORTHANC, study.large.path),
        },
        pids=lambda probe: [initiating.pid, responding.pid],
        process_names=("initiating", "responding"),
    )


def _responding(orthanc: OrthancServer, static_url: str) -> dict[str, Any]:
    config = gateway_config(
        home_community_id=HOME,
        port=free_port(),
        upstreams={
            "orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]},
            "static": {"protocol": "wado-rs", "base_urls": [static_url]},
        },
        sources={RLUID_ORTHANC: "orthanc", RLUID_STATIC: "static"},
    )
    return _unlimited(config)


def _initiating(responding: GatewayProcess) -> dict[str, Any]:
    config = gateway_config(
        home_community_id=INITIATING,
        port=free_port(),
        upstreams={"community-a": {"protocol": "xc-wado", "base_urls": [responding.endpoint]}},
        communities={HOME: "community-a"},
    )
    return _unlimited(config)


def _over_tls(orthanc_tls: str, certs: Certificates) -> dict[str, Any]:
    config = gateway_config(
        home_community_id=HOME,
        port=free_port(),
        upstreams={
            "orthanc": {
                "protocol": "wado-rs",
                "base_urls": [orthanc_tls],
                "tls": {"ca_file": str(certs.ca)},
            }
        },
        sources={RLUID_ORTHANC: "orthanc"},
    )
    config["server"]["tls"] = {"cert_file": str(certs.cert), "key_file": str(certs.key)}
    return _unlimited(config)


def _unlimited(config: dict[str, Any]) -> dict[str, Any]:
    """Rate limits far above what the benchmark asks for: it measures the relay, not them."""
    limit = {"requests_per_s": 1_000_000, "burst": 1_000_000, "max_streams": 1024}
    config["server"]["rate_limit"] = limit
    return config


if __name__ == "__main__":
    sys.exit(main())
