"""The state directory of one gateway: what it holds, who may read it, who owns it now.

::

    {state}/                      server.state_directory: $STATE_DIRECTORY, else "."
      mado-gateway.lock           flock(2)-ed by the running gateway; holds its pid
      audit/journal[-N]/          the audit journal of each worker (relative audit paths)
      audit/audit.log             the audit file destination, when it is the default
      metrics/                    the workers' Prometheus files (cleared at start)
      upstreams/                  the workers' last upstream outcomes (cleared at start)

Everything the process creates is private to its user: the umask is set to 077 before
anything is written (files 0600, directories 0700); a configured state directory is made
0700 when it is this user's (not the working directory, the default); an audit file found
readable by others — it holds patient names and identifiers — is made 0600 at start, with
a log line.

One gateway per state directory: a second one started with the same directory stops at
once with a message naming the first one's pid, instead of colliding with it in the journal.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.audit.settings import AuditSettings

__all__ = ["State", "StateError", "claim_state"]

log = logging.getLogger("mado_gateway.state")

LOCK_NAME = "mado-gateway.lock"


class StateError(Exception):
    """The state directory cannot be used (message for the operator)."""


@dataclass(frozen=True, slots=True)
class State:
    """A claimed state directory (the lock is held while the process lives)."""

    path: Path
    lock_fd: int

    @property
    def metrics(self) -> Path:
        return self.path / "metrics"

    @property
    def upstreams(self) -> Path:
        return self.path / "upstreams"

    def fresh(self, folder: Path) -> Path:
        """``folder`` emptied (what a previous run left is stale) and made 0700."""
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        return folder


def claim_state(path: Path, audit: AuditSettings, *, own: bool = True) -> State:
    """Make ``path`` (0700), take its lock, tighten the audit files. Sets the umask to 077.
    ``own``: the folder is the gateway's alone (configured, not the working directory by
    default), so it is made 0700 when it is not.

    Raises :class:`StateError` when it cannot be made or another gateway holds it.
    """
    os.umask(0o077)
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.stat()
        if own and stat.S_IMODE(info.st_mode) & 0o077 and info.st_uid == os.geteuid():
            path.chmod(0o700)
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StateError(
            f"state directory {path} cannot be used: {exc.strerror or exc} "
            "(server.state_directory)"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateError(
            f"state directory {path.resolve()} is used by another gateway (pid {holder}): "
            "give each gateway its own server.state_directory"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    for destination in audit.destinations:
        if destination.file is not None:
            _private(Path(destination.file.path))
    return State(path=path, lock_fd=fd)


def _private(path: Path) -> None:
    """Make an existing audit file 0600 when others (group or world) may read it."""
    with contextlib.suppress(OSError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(0o600)
            log.warning(
                "audit file was readable by others; made 0600",
                extra={"path": str(path), "mode_was": oct(mode)},
            )
