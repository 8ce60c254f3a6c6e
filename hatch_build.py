"""Wheel build hook: stamp the commit the wheel is built from into ``gateway/_commit.txt``,
which ``mado-gateway --version`` reads (``gateway/service/version.py``). Built outside a git
checkout, the wheel carries no stamp and says ``unknown``."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CommitStamp(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        git = shutil.which("git")
        if git is None or not (Path(self.root) / ".git").exists():
            return
        done = subprocess.run(  # noqa: S603 - a fixed command
            [git, "-C", self.root, "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        )
        commit = done.stdout.strip()
        if done.returncode != 0 or not commit:
            return
        stamp = Path(tempfile.mkdtemp()) / "_commit.txt"
        stamp.write_text(commit + "\n", encoding="ascii")
        build_data["force_include"][str(stamp)] = "gateway/_commit.txt"
