"""The last outcome of each configured upstream base URL, for ``/admin/upstreams``.

:class:`UpstreamOutcomes` is an exchange sink: for every attempt of every leg it keeps, per
(upstream, base URL), when it was tried, the status or the failure, how the body ended and
the request id — the exchange to look for in the logs. Only upstreams of the configuration
are kept (a ``retrieveurl`` target is not), so the table is bounded by the configuration.

With several workers each keeps its own table and writes it, when it changed and at most once
a second, to ``{state}/upstreams/worker-{n}.json`` (0600, written whole then renamed);
:func:`merged` gives the latest outcome per base URL over every worker's table.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gateway.exchange import Exchange
from routing.registry import Registry
from routing.urls import parse_url

__all__ = ["LastOutcome", "UpstreamOutcomes", "merged", "shown_base"]

_MAX_ENTRIES = 4096
_WRITE_EVERY_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LastOutcome:
    """One attempt at one base URL: ``status`` (None: no answer) or ``failure``; ``end`` how
    the relayed body ended (None: no body relayed); ``at`` the wall-clock time (epoch s)."""

    upstream: str
    base_url: str
    at: float
    status: int | None
    failure: str | None
    end: str | None
    request_id: str


@functools.lru_cache(maxsize=256)  # called per leg with one of a few configured base URLs
def shown_base(url: str) -> str:
    """A base URL as an operator may see it: origin and path, never credentials or a query."""
    try:
        parsed = parse_url(url)
    except ValueError:
        return "(unreadable URL)"
    return parsed.origin + parsed.path


class UpstreamOutcomes:
    """The exchange sink keeping the last outcome per configured base URL (module docstring)."""

    def __init__(self, registry: Registry, *, worker: int = 0) -> None:
        self._known = set(registry.config.upstreams)
        self.worker = worker
        self.table: dict[tuple[str, str], LastOutcome] = {}
        self._dirty = False

    def configured(self, registry: Registry) -> None:
        """A reload changed the upstreams: forget those no longer configured."""
        self._known = set(registry.config.upstreams)
        self.table = {key: v for key, v in self.table.items() if key[0] in self._known}
        self._dirty = True

    def observe(self, exchange: Exchange) -> None:
        now = time.time()
        for leg in exchange.legs:
            if leg.upstream not in self._known:
                continue
            last = len(leg.attempts) - 1
            for index, attempt in enumerate(leg.attempts):
                base = shown_base(attempt.base_url)
                self.table[(leg.upstream, base)] = LastOutcome(
                    upstream=leg.upstream,
                    base_url=base,
                    at=now,
                    status=attempt.status,
                    failure=attempt.failure.value if attempt.failure is not None else None,
                    end=leg.end.value if leg.end is not None and index == last else None,
                    request_id=exchange.request_id,
                )
                self._dirty = True
        while len(self.table) > _MAX_ENTRIES:
            del self.table[next(iter(self.table))]

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(outcome) for outcome in self.table.values()]

    def write(self, folder: Path) -> None:
        """Write the table to ``folder/worker-{n}.json`` when it changed (0600, atomic)."""
        if not self._dirty:
            return
        self._dirty = False
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = folder / f"worker-{self.worker}.json"
        temporary = folder / f".worker-{self.worker}.json.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(self.rows(), file)
        os.replace(temporary, target)

    async def publish(self, folder: Path) -> AsyncIterator[None]:
        """Write the table every second while the process runs, and once at the end."""
        task = asyncio.create_task(self._publishing(folder))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            with contextlib.suppress(OSError):
                self.write(folder)

    async def _publishing(self, folder: Path) -> None:
        while True:
            await asyncio.sleep(_WRITE_EVERY_S)
            try:
                self.write(folder)
            except OSError:
                self._dirty = True  # try again; the admin view is only late meanwhile


def merged(
    own: Iterable[Mapping[str, Any]], folder: Path | None, *, skip: str | None = None
) -> list[dict[str, Any]]:
    """The latest row per (upstream, base URL) over ``own`` and the worker files in
    ``folder`` (``skip``: the file name of this process, whose rows are ``own``)."""
    rows: list[Mapping[str, Any]] = list(own)
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("worker-*.json")):
            if path.name == skip:
                continue
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, list):
                    rows += [row for row in loaded if isinstance(row, dict)]
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in rows:
        key = (str(row.get("upstream")), str(row.get("base_url")))
        if key not in latest or float(row.get("at", 0)) > float(latest[key].get("at", 0)):
            latest[key] = row
    return [dict(row) for _, row in sorted(latest.items())]
