"""Directory metrics, registered on an injected ``CollectorRegistry`` (design.md §7).

Labels come from the fixed tuples below and are all created at start: ``kind`` is what was
looked up, ``answer`` whether the cached answer named an upstream, ``reason`` why a directory
search failed. No UID, OID or URL is ever a label value.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ANSWERS", "ERROR_REASONS", "KINDS", "DirectoryMetrics"]

_PREFIX = "mado_gateway_directory"
KINDS = ("source", "community")
ANSWERS = ("found", "not-found")
ERROR_REASONS = ("connect", "timeout", "status", "invalid", "refused")
_AGE_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 900, 3600)


class DirectoryMetrics:
    """Hits, misses, errors and the age of the answers served from the cache."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.hits = Counter(
            f"{_PREFIX}_cache_hits_total",
            "Look-ups answered from the cache, by what was looked up and the cached answer.",
            ["kind", "answer"],
            registry=registry,
        )
        self.misses = Counter(
            f"{_PREFIX}_cache_misses_total",
            "Look-ups that searched the directory (one search serves every concurrent miss).",
            ["kind"],
            registry=registry,
        )
        self.errors = Counter(
            f"{_PREFIX}_errors_total",
            "Directory searches that failed, by reason.",
            ["kind", "reason"],
            registry=registry,
        )
        self.entry_age = Histogram(
            f"{_PREFIX}_entry_age_seconds",
            "Age of the cached answers served, in seconds.",
            ["kind"],
            buckets=_AGE_BUCKETS,
            registry=registry,
        )
        self.entries = Gauge(
            f"{_PREFIX}_entries",
            "Answers in the cache, by answer.",
            ["answer"],
            registry=registry,
        )
        for kind in KINDS:
            self.misses.labels(kind)
            self.entry_age.labels(kind)
            for answer in ANSWERS:
                self.hits.labels(kind, answer)
            for reason in ERROR_REASONS:
                self.errors.labels(kind, reason)
        for answer in ANSWERS:
            self.entries.labels(answer)
