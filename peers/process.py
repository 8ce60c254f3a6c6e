"""What every peer process shares: started with its output in a log file, asked whether it
is still alive while it comes up, and stopped — politely first, then for good."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["PeerProcess"]


class PeerProcess:
    """Base of the peers; subclasses start with :meth:`spawn` in their ``__enter__``."""

    process: subprocess.Popen[bytes] | None = None

    def spawn(
        self,
        argv: Sequence[str],
        *,
        log_file: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Start ``argv``; standard output and error are appended to ``log_file``."""
        with log_file.open("ab") as log:
            self.process = subprocess.Popen(
                list(argv), stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The running process's id (a benchmark reads its CPU time)."""
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout_s: float = 10) -> None:
        """SIGTERM, then SIGKILL if it has not ended within ``timeout_s``."""
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
