"""Manifest parsing for ``POST /mado/retrieve``: never on the event loop.

Every manifest body, and every Key Object the key-image fallback fetches, is parsed by
:class:`mado.sandbox.ManifestWorkers` — worker processes bounded in time, memory, inflated
size, nesting and element count (:class:`mado.guard.ParseLimits`) — reached from a thread
pool as large as the worker pool, so a bomb occupies one worker for at most
``timeout_s`` while the event loop serves everyone else. The workers start with the first
manifest and stop with the application.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from aiohttp import web

from gateway.keys import MANIFEST_READER
from mado import jobs
from mado.guard import DEFAULT_LIMITS, ParseLimits
from mado.kin import KeyImageNote
from mado.model import Manifest
from mado.sandbox import ManifestWorkers

__all__ = ["ManifestReader", "manifest_reader_context"]

T = TypeVar("T")


class ManifestReader:
    """Async access to the manifest workers; see the module contract."""

    def __init__(self, limits: ParseLimits = DEFAULT_LIMITS, *, workers: int = 2) -> None:
        self.limits = limits
        self._workers = ManifestWorkers(limits, workers=workers)
        self._threads = ThreadPoolExecutor(workers, thread_name_prefix="manifest")

    async def manifest(self, data: bytes | bytearray | memoryview, source: str) -> Manifest:
        """The manifest in ``data``; raises :class:`~mado.errors.ManifestError`."""
        manifest, _ = await self._run(jobs.read_manifest, source, self.limits, payload=data)
        return manifest

    async def notes(self, objects: list[bytes]) -> tuple[KeyImageNote, ...]:
        """The Key Image Notes among ``objects`` (unreadable ones skipped)."""
        return await self._run(jobs.read_notes, objects, self.limits)

    async def _run(self, job: Callable[..., T], *args: Any, payload: Any = None) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._threads, functools.partial(self._workers.run, job, *args, payload=payload)
        )

    def close(self) -> None:
        self._workers.close()
        self._threads.shutdown(wait=False, cancel_futures=True)


async def manifest_reader_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: one :class:`ManifestReader` for the application's lifetime."""
    reader = ManifestReader()
    app[MANIFEST_READER] = reader
    yield
    reader.close()
