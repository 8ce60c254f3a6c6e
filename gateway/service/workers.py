"""Several worker processes on one machine: every core used, one port.

``serve --workers N`` (N > 1) makes this process a supervisor. It forks N workers, each a
whole gateway (:func:`gateway.service.serve.serve_process`) that opens the public and admin
ports with SO_REUSEPORT, so the kernel spreads new connections over them. Each worker has
its own audit journal (:func:`gateway.service.config.worker_journal`), its own rate buckets,
stream counts and XCA-I spool budget, and writes its metrics to files the admin listener adds
up (:func:`gateway.sinks.metrics.exposition`).

The supervisor itself serves nothing and holds no event loop or thread, so forking is safe.
It waits for signals with them blocked (``sigtimedwait``):

* SIGTERM, SIGINT: sent on to every worker, which drains (:mod:`gateway.edge.drain`); the
  supervisor exits when the last one has;
* SIGHUP: sent on to every worker, which reloads the file itself;
* SIGCHLD: a worker that exits while the gateway runs is started again (same number, so it
  reopens its own journal) and logged; one that fails while starting — or twice within
  ``CRASH_WINDOW_S`` — stops the gateway with status 1, so that systemd or Kubernetes see it.

A worker dies with its supervisor (``PR_SET_PDEATHSIG``: it gets SIGTERM and drains).
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import multiprocess

__all__ = ["CRASH_WINDOW_S", "supervise"]

log = logging.getLogger("mado_gateway.workers")

CRASH_WINDOW_S = 10.0
START_TIMEOUT_S = 60.0
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
_PR_SET_PDEATHSIG = 1


def supervise(
    count: int,
    run_worker: Callable[[int, int], int],
    *,
    metrics_folder: Path,
    started: Callable[[], None],
) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; the exit status.

    ``run_worker(index, ready_fd)`` runs in the forked child and returns its exit status;
    ``started()`` is called once every worker has said it listens.
    """
    supervisor = _Supervisor(count, run_worker, metrics_folder)
    return supervisor.run(started)


class _Supervisor:
    def __init__(
        self, count: int, run_worker: Callable[[int, int], int], metrics_folder: Path
    ) -> None:
        self.count = count
        self.run_worker = run_worker
        self.metrics_folder = metrics_folder
        self.children: dict[int, int] = {}  # pid -> worker index
        self.started_at: dict[int, float] = {}  # worker index -> monotonic start
        self.crashed_at: dict[int, float] = {}  # worker index -> last unexpected exit
        self.ready: set[int] = set()
        self.stopping = False
        self.status = 0
        self.pid = os.getpid()

    def run(self, started: Callable[[], None]) -> int:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        self.mask = previous
        read_fd, self.ready_fd = os.pipe()
        self.read_fd = read_fd
        os.set_blocking(read_fd, False)
        try:
            for index in range(self.count):
                self._fork(index)
            announced = False
            deadline = time.monotonic() + START_TIMEOUT_S
            pending = b""
            while self.children or not self.stopping:
                received = signal.sigtimedwait(_SIGNALS, 0.2)
                if received is not None:
                    self._signal(received.si_signo)
                pending = self._read_ready(read_fd, pending)
                if not announced and len(self.ready) == self.count and not self.stopping:
                    announced = True
                    started()
                if not announced and not self.stopping and time.monotonic() > deadline:
                    log.error("workers did not start in time", extra={"ready": len(self.ready)})
                    self._fail()
                if not self.children and not self.stopping:
                    self._fail()
        finally:
            os.close(read_fd)
            os.close(self.ready_fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return self.status

    def _fork(self, index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
                os.close(self.read_fd)
                _die_with(self.pid)
                status = self.run_worker(index, self.ready_fd)
            except BaseException:  # nothing may return into the supervisor's loop
                logging.getLogger("mado_gateway").exception("worker failed")
            finally:
                logging.shutdown()
                os._exit(status)
        self.children[pid] = index
        self.started_at[index] = time.monotonic()

    def _read_ready(self, fd: int, pending: bytes) -> bytes:
        while select.select([fd], [], [], 0)[0]:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                break
            if not data:
                break
            pending += data
        *lines, rest = pending.split(b"\n")
        for line in lines:
            if line.strip().isdigit():
                self.ready.add(int(line))
        return rest

    def _signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum == signal.SIGHUP:
            log.info("SIGHUP received: every worker reloads", extra={"workers": len(self.children)})
            self._send(signal.SIGHUP)
        else:
            if not self.stopping:
                log.info(
                    f"{signal.Signals(signum).name} received: stopping the workers",
                    extra={"workers": len(self.children)},
                )
            self.stopping = True
            self._send(signal.SIGTERM)

    def _send(self, signum: signal.Signals) -> None:
        for pid in list(self.children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                continue

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            index = self.children.pop(pid, None)
            if index is None:
                continue
            multiprocess.mark_process_dead(pid, str(self.metrics_folder))  # type: ignore[no-untyped-call]
            code = os.waitstatus_to_exitcode(status)
            if self.stopping:
                if code not in (0, -signal.SIGTERM):  # a worker stopped before it could drain
                    self.status = 1
                continue
            self._unexpected(index, pid, code)

    def _unexpected(self, index: int, pid: int, code: int) -> None:
        now = time.monotonic()
        starting = index not in self.ready
        again = now - self.crashed_at.get(index, -CRASH_WINDOW_S) < CRASH_WINDOW_S
        log.error(
            "worker exited",
            extra={"worker": index, "worker_pid": pid, "exit": code, "starting": starting},
        )
        if starting or again:
            self._fail()
            return
        self.crashed_at[index] = now
        self.ready.discard(index)
        self._fork(index)
        log.warning("worker started again", extra={"worker": index})

    def _fail(self) -> None:
        """Stop every worker and exit 1."""
        if not self.stopping:
            log.error("stopping the gateway: a worker cannot run")
        self.stopping = True
        self.status = 1
        self._send(signal.SIGTERM)


def _die_with(parent: int) -> None:
    """SIGTERM this process when the supervisor dies (Linux; elsewhere nothing)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
