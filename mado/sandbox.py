"""Manifest parsing in worker processes, bounded in time and memory.

A manifest comes from whoever sends one; parsing it must not cost the caller more than
:class:`~mado.guard.ParseLimits` allows, whatever the bytes (issue: a deflate bomb took 2 GB,
deep nesting hung an event loop). :class:`ManifestWorkers` keeps up to ``workers`` processes
(started on first use, from a ``forkserver`` that has imported the readers once), each of which:

* caps its own address space (``RLIMIT_AS``) at what it had at start plus
  ``limits.memory_bytes``: a parse that needs more fails with ``MemoryError`` there;
* runs one job at a time and sends back the result (a model, a report — never a dataset).

:meth:`ManifestWorkers.run` sends a job (a module-level function and its arguments, e.g. from
:mod:`mado.jobs`) to an idle worker and waits at most ``limits.timeout_s`` for the answer; a
worker that does not answer in time is killed and replaced. It is blocking and thread-safe:
the gateway calls it from a small thread pool (never on the event loop), the command line
directly. At most ``workers`` jobs run at once; further callers wait for a free worker.

Errors reach the caller as :class:`~mado.errors.ManifestError`: the job's own, or
:class:`~mado.errors.ManifestTooComplex` for a timeout, the memory cap, or a worker that died;
anything else a job raises is a defect, logged by the worker (its traceback goes to standard
error) and reported as :class:`~mado.errors.UnreadableManifest`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import threading
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from mado.errors import ManifestError, ManifestTooComplex, UnreadableManifest
from mado.guard import DEFAULT_LIMITS, ParseLimits

__all__ = ["ManifestWorkers"]

T = TypeVar("T")
Buffer = bytes | bytearray | memoryview
_PRELOAD = ["mado.jobs"]  # what the forkserver imports once, so a new worker starts warm
_context = multiprocessing.get_context("forkserver")


class _Worker:
    def __init__(self, limits: ParseLimits) -> None:
        self.connection, child = _context.Pipe()
        self.process = _context.Process(
            target=_serve, args=(child, limits), name="mado-manifest-worker", daemon=True
        )
        self.process.start()
        child.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)


class ManifestWorkers:
    """A small pool of parsing processes; see the module contract."""

    def __init__(self, limits: ParseLimits = DEFAULT_LIMITS, *, workers: int = 2) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.limits = limits
        self._permits = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._closed = False
        _context.set_forkserver_preload(_PRELOAD)

    def run(self, job: Callable[..., T], *args: Any, payload: Buffer | None = None) -> T:
        """``job(*args)`` in a worker — ``job(payload, *args)`` when a payload is given: the
        manifest's bytes, sent as they are rather than pickled (no copy of a large body).
        Raises :class:`ManifestError` (see the module contract)."""
        with self._permits:
            worker = self._take()
            try:
                status, value = self._exchange(worker, job, args, payload)
            except BaseException:
                worker.stop()
                raise
            self._give_back(worker)
        if status == "error":
            raise value
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop every idle worker; a job still running ends with its worker."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the manifest workers are closed")
            while self._idle:
                worker = self._idle.pop()
                if worker.process.is_alive():
                    return worker
                worker.stop()
        return _Worker(self.limits)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.stop()

    def _exchange(
        self,
        worker: _Worker,
        job: Callable[..., Any],
        args: tuple[Any, ...],
        payload: Buffer | None,
    ) -> Any:
        timeout_s = self.limits.timeout_s
        try:
            worker.connection.send((job, args, payload is not None))
            if payload is not None:
                worker.connection.send_bytes(payload)
            if not worker.connection.poll(timeout_s):
                raise ManifestTooComplex(
                    f"reading the manifest took longer than {timeout_s:g} s; it was stopped"
                )
            return worker.connection.recv()
        except (EOFError, OSError):
            raise ManifestTooComplex(
                "reading the manifest needed more memory than a manifest may "
                f"({self.limits.memory_bytes // (1024 * 1024)} MB)"
            ) from None


def _serve(connection: Connection, limits: ParseLimits) -> None:
    """The worker's loop: one job at a time until the pipe closes."""
    _cap_memory(limits.memory_bytes)
    while True:
        try:
            job, args, has_payload = connection.recv()
            if has_payload:
                args = (connection.recv_bytes(), *args)
        except (EOFError, OSError):
            return
        reply: tuple[str, Any]
        try:
            reply = ("ok", job(*args))
        except ManifestError as exc:
            reply = ("error", exc)
        except MemoryError:
            reply = ("error", ManifestTooComplex("reading the manifest needed too much memory"))
        except RecursionError:
            reply = ("error", ManifestTooComplex("the manifest nests too deep to be read"))
        except Exception as exc:  # a defect in a reader: say so in the log, not to the sender
            traceback.print_exc()
            reply = ("error", UnreadableManifest(f"the manifest could not be read ({exc!r:.80})"))
        try:
            connection.send(reply)
        except MemoryError:
            connection.send(("error", ManifestTooComplex("the manifest's model is too large")))


def _cap_memory(budget: int) -> None:
    """Limit the address space to what the worker has now plus ``budget`` (Linux: statm)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[0])
        current = pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return  # no /proc: the wall-time limit still holds
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = current + budget
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
