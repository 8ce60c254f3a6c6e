"""The malloc arena limit a serving process sets (gateway.service.allocator)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.service.allocator import limit_arenas

_PROBE = "from gateway.service.allocator import limit_arenas; print(limit_arenas())"


def test_glibc_takes_the_limit() -> None:
    # A process of its own: the setting lasts for the process.
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, env=environment
    )
    assert done.stdout.strip() == "True"


def test_the_operators_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_arenas() is False
