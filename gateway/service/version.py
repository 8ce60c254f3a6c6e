"""The version of the gateway and the commit it was built from.

The commit is read, in order, from ``MADO_GATEWAY_COMMIT``, from ``gateway/_commit.txt``
(written into a wheel by the build hook, ``hatch_build.py``), and from ``git`` when the
package runs from a checkout; ``unknown`` when none of them knows.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from gateway import __version__

__all__ = ["commit", "version_line"]

_PACKAGE = Path(__file__).resolve().parent.parent
_HEX = re.compile(r"[0-9a-f]{7,40}")


@functools.cache
def commit() -> str:
    """The commit (40 hex digits, or ``unknown``); read once per process."""
    given = os.environ.get("MADO_GATEWAY_COMMIT", "").strip().lower()
    if _HEX.fullmatch(given):
        return given
    stamped = _PACKAGE / "_commit.txt"
    try:
        text = stamped.read_text(encoding="ascii").strip().lower()
    except (OSError, UnicodeDecodeError):
        text = ""
    if _HEX.fullmatch(text):
        return text
    return _from_git() or "unknown"


def _from_git() -> str | None:
    git = shutil.which("git")
    if git is None or not (_PACKAGE.parent / ".git").exists():
        return None
    try:
        done = subprocess.run(  # noqa: S603 - a fixed command, no input
            [git, "-C", str(_PACKAGE.parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip().lower()
    return text if done.returncode == 0 and _HEX.fullmatch(text) else None


def version_line(prog: str = "mado-gateway") -> str:
    """What ``--version`` prints: ``mado-gateway 0.1.0 (commit 1a2b…)``."""
    return f"{prog} {__version__} (commit {commit()})"
