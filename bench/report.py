"""The relay benchmark's table (markdown, as the README quotes it) and its goals (issue 11).

Each cell is the median over the rounds and, in brackets, the lowest and highest: the spread
says how noisy the machine was.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

__all__ = ["report"]

TARGETS = ("direct", "nginx-default", "nginx-tuned", "gateway", "chain")
HEADINGS = ("direct", "nginx default", "nginx 256k", "one gateway", "two gateways")

Rows = list[dict[str, Any]]


def _values(rows: Rows, key: str | Callable[[dict[str, Any]], float]) -> list[float]:
    pick = key if callable(key) else (lambda row: float(row[key]))
    return [pick(row) for row in rows]


def _median(results: dict[str, Any], target: str, probe: str, key: str) -> float | None:
    rows = results["targets"].get(target, {}).get("results", {}).get(probe)
    return statistics.median(_values(rows, key)) if rows else None


def _cell(rows: Rows | None, key: str | Callable[[dict[str, Any]], float], digits: int) -> str:
    if not rows:
        return "—"
    values = _values(rows, key)
    median = statistics.median(values)
    if len(values) == 1:
        return f"{median:.{digits}f}"
    return f"{median:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(results: dict[str, Any]) -> None:
    targets = results["targets"]
    study = results["study"]
    gb = study["bytes"] / 1e9
    small, large = results["small_instance_bytes"], results["large_instance_bytes"]
    lines: list[tuple[str, str, str | Callable[[dict[str, Any]], float], int, bool]] = [
        (f"{gb:.2f} GB study from Orthanc: MB/s", "study", "mb_per_s", 0, False),
        ("same: relay CPU-s per GiB", "study", "cpu_s_per_gib", 2, True),
        ("static upstream (same size): MB/s", "static", "mb_per_s", 0, False),
        ("same: relay CPU-s per GiB", "static", "cpu_s_per_gib", 2, True),
        ("TLS on both legs, the study: MB/s", "tls", "mb_per_s", 0, False),
        ("same: relay CPU-s per GiB", "tls", "cpu_s_per_gib", 2, True),
        (f"{small / 1e3:.1f} kB instance, 8 concurrent: CPU ms per request", "small",
         "cpu_ms_per_request", 3, True),
        ("same: p50 / p99 latency, ms", "small", "p50_ms", 2, False),
        ("same: requests/s", "small", "requests_per_s", 0, False),
        (f"{large / 1e6:.2f} MB instance, 8 concurrent: CPU ms per request", "large",
         "cpu_ms_per_request", 3, True),
        ("same: p50 / p99 latency, ms", "large", "p50_ms", 2, False),
        ("same: requests/s", "large", "requests_per_s", 0, False),
    ]
    print(f"\n{results['runs']} alternating rounds after a warm-up; median (lowest-highest)\n")
    print("| probe | " + " | ".join(HEADINGS) + " |")
    print("|---" * (len(HEADINGS) + 1) + "|")
    for label, probe, key, digits, relay_only in lines:
        cells = []
        for name in TARGETS:
            rows = targets.get(name, {}).get("results", {}).get(probe)
            if relay_only and name == "direct":
                cells.append("—")
            elif key == "p50_ms" and rows:
                p50 = _cell(rows, "p50_ms", digits)
                p99 = statistics.median(_values(rows, "p99_ms"))
                cells.append(f"{p50} / {p99:.{digits}f}")
            else:
                cells.append(_cell(rows, key, digits))
        print(f"| {label} | " + " | ".join(cells) + " |")
    peak = []
    for name in TARGETS:
        rows = [r for probe in targets.get(name, {}).get("results", {}).values() for r in probe]
        peak.append(f"{max(r['peak_rss_mb'] for r in rows):.1f}" if rows and name != "direct"
                    else "—")
    print("| peak RSS of the relay, any probe, MB | " + " | ".join(peak) + " |")
    slow = results.get("slow_client")
    if slow:
        print(f"\none gateway, the study read at {slow['rate_bytes_per_s'] / 1e6:.0f} MB/s "
              f"(a quarter of direct): peak RSS {slow['peak_rss_mb']:.1f} MB, "
              f"{slow['cpu_s_per_gib']:.2f} CPU-s per GiB")
    _per_gateway(results)
    _goals(results)


def _per_gateway(results: dict[str, Any]) -> None:
    chain = results["targets"].get("chain", {})
    names = chain.get("processes", [])
    if not chain.get("results"):
        return
    print("\ntwo gateways, each apart (median):")
    for probe, unit, scale in (
        ("study", "CPU-s per GiB", "gib"),
        ("static", "CPU-s per GiB", "gib"),
        ("small", "CPU ms per request", "request"),
        ("large", "CPU ms per request", "request"),
    ):
        rows = chain["results"].get(probe)
        if not rows:
            continue
        parts = []
        for index, name in enumerate(names):
            if scale == "gib":
                values = [r["cpu_s"][index] / (r["bytes"] / 2**30) for r in rows]
            else:
                values = [r["cpu_s"][index] * 1e3 / r["requests"] for r in rows]
            parts.append(f"{name} {statistics.median(values):.3f}")
        print(f"  {probe:6s} {unit}: " + ", ".join(parts))


def _goals(results: dict[str, Any]) -> None:
    def m(target: str, probe: str, key: str) -> float | None:
        return _median(results, target, probe, key)

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None or not b else a / b

    checks: list[tuple[str, float | None, str, float]] = [
        ("small: CPU ms per request, one gateway", m("gateway", "small", "cpu_ms_per_request"),
         "<=", 0.25),
        ("small: CPU ms per request per gateway, chain",
         None if (c := m("chain", "small", "cpu_ms_per_request")) is None else c / 2, "<=", 0.25),
        ("small: p50 one gateway / direct", ratio(m("gateway", "small", "p50_ms"),
                                                  m("direct", "small", "p50_ms")), "<=", 1.2),
        ("study: CPU-s per GiB, one gateway", m("gateway", "study", "cpu_s_per_gib"), "<=", 0.35),
        ("study: CPU-s per GiB per gateway, chain",
         None if (c := m("chain", "study", "cpu_s_per_gib")) is None else c / 2, "<=", 0.35),
        ("study: MB/s one gateway / nginx 256k", ratio(m("gateway", "study", "mb_per_s"),
                                                       m("nginx-tuned", "study", "mb_per_s")),
         ">=", 1.0),
        ("study: MB/s two gateways / nginx 256k", ratio(m("chain", "study", "mb_per_s"),
                                                        m("nginx-tuned", "study", "mb_per_s")),
         ">=", 1.0),
        ("tls: CPU-s per GiB one gateway / nginx 256k",
         ratio(m("gateway", "tls", "cpu_s_per_gib"), m("nginx-tuned", "tls", "cpu_s_per_gib")),
         "<=", 1.0),
    ]
    print("\ngoals (issue 11):")
    for label, value, op, bound in checks:
        if value is None:
            print(f"  {label}: not measured")
            continue
        met = value <= bound if op == "<=" else value >= bound
        print(f"  {label}: {value:.3f} (goal {op} {bound}) {'met' if met else 'NOT met'}")
