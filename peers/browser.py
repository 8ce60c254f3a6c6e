"""A real browser: headless Chromium (Debian's ``chromium``) opening one page.

The page is expected to report what it saw by calling back the server that served it; this
peer only starts the browser, in its own profile folder, and stops it (with the renderer
and GPU processes it started: they share its process group).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path
from types import TracebackType

__all__ = ["CHROMIUM", "HeadlessChromium"]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class HeadlessChromium:
    """``with HeadlessChromium(folder, url):`` — the page at ``url`` loads and runs its scripts."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url
        self.log_file = folder / "chromium.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HeadlessChromium:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    CHROMIUM,
                    "--headless=new",
                    "--no-sandbox",  # tests run as root, where Chromium's sandbox refuses to start
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-extensions",
                    f"--user-data-dir={self.folder / 'profile'}",
                    self.url,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped together below
            )
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()
