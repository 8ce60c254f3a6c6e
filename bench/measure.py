"""One measurement of one target: a bulk read with curl, or small requests with wrk.

Both report what the relay process(es) spent — CPU seconds (user + system, from psutil's
``cpu_times``, per process) between just before and just after the client ran — and their
peak resident memory (summed over the processes, sampled every 20 ms from a thread). The
client's own figures come from the client: curl's size, time to first byte and total time;
wrk's request count, duration and latency percentiles (``--latency``).
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

__all__ = ["MB", "BulkResult", "Sampler", "bulk", "small", "cpu_seconds"]

MB = 1_000_000
GIB = 2**30

BulkResult = dict[str, float | int | list[float]]


class Sampler:
    """Peak summed RSS of some processes, sampled from a thread while in the ``with`` block."""

    def __init__(self, pids: Sequence[int], *, interval_s: float = 0.02) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for process in self.processes:
                with contextlib.suppress(psutil.Error):
                    total += process.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(self.interval_s)

    def __enter__(self) -> Sampler:
        if self.processes:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def cpu_seconds(pids: Sequence[int]) -> list[float]:
    """User + system CPU seconds each process has used so far."""
    times = []
    for pid in pids:
        t = psutil.Process(pid).cpu_times()
        times.append(t.user + t.system)
    return times


def bulk(
    url: str,
    pids: Sequence[int],
    *,
    cafile: Path | None = None,
    limit_bytes_per_s: int | None = None,
) -> BulkResult:
    """Read ``url`` to its end with curl; the relay's cost of it."""
    command = ["curl", "-s", "-f", "-o", "/dev/null"]
    command += ["-w", "%{http_code} %{size_download} %{time_starttransfer} %{time_total}"]
    if cafile is not None:
        command += ["--cacert", str(cafile)]
    if limit_bytes_per_s:
        command += ["--limit-rate", str(limit_bytes_per_s)]
    with Sampler(pids) as sampler:
        before = cpu_seconds(pids)
        done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
        after = cpu_seconds(pids)
    fields = done.stdout.split()
    if done.returncode != 0 or len(fields) != 4 or fields[0] != "200":
        raise RuntimeError(f"{url}: curl exit {done.returncode}, {done.stdout!r}")
    size, ttfb, total = int(fields[1]), float(fields[2]), float(fields[3])
    cpu = [b - a for a, b in zip(before, after, strict=True)]
    return {
        "bytes": size,
        "ttfb_s": ttfb,
        "total_s": total,
        "mb_per_s": size / total / MB,
        "cpu_s": cpu,
        "cpu_s_per_gib": sum(cpu) / (size / GIB),
        "peak_rss_mb": sampler.peak / MB,
    }


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
_PERCENTILE = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def small(
    url: str, pids: Sequence[int], *, connections: int = 8, duration_s: float = 5.0
) -> BulkResult:
    """``connections`` clients asking for ``url`` again and again for ``duration_s`` (wrk, one
    thread); the relay's CPU per request and the latency percentiles the clients saw."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{round(duration_s)}s", "--latency", url]
    with Sampler(pids) as sampler:
        before = cpu_seconds(pids)
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        after = cpu_seconds(pids)
    out = done.stdout
    requests = _REQUESTS.search(out)
    if done.returncode != 0 or requests is None:
        raise RuntimeError(f"{url}: wrk exit {done.returncode}: {out}{done.stderr}")
    count = int(requests.group(1))
    seconds = float(requests.group(2)) * _UNITS[requests.group(3)] / 1e3
    percentiles = {p: float(v) * _UNITS[u] for p, v, u in _PERCENTILE.findall(out)}
    failed = sum(int(n) for n in _NON_2XX.findall(out))
    errors = _SOCKET_ERRORS.search(out)
    if failed or (errors and any(int(n) for n in errors.groups())):
        raise RuntimeError(f"{url}: wrk saw failures:\n{out}")
    cpu = [b - a for a, b in zip(before, after, strict=True)]
    return {
        "requests": count,
        "requests_per_s": count / seconds,
        "p50_ms": percentiles["50"],
        "p99_ms": percentiles["99"],
        "cpu_s": cpu,
        "cpu_ms_per_request": sum(cpu) * 1e3 / count,
        "peak_rss_mb": sampler.peak / MB,
    }
