"""Issue 14 item 5: ``--version`` on the command and on every subcommand, with the commit."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import __version__
from gateway.cli import main
from gateway.service import version

REPO = Path(__file__).resolve().parents[2]
SUBCOMMANDS = [
    [],
    ["serve"],
    ["check-config"],
    ["config-schema"],
    ["manifest"],
    ["manifest", "validate"],
    ["manifest", "convert"],
    ["manifest", "create"],
    ["fetch"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "top")
def test_every_subcommand_prints_the_version_and_the_commit(
    words: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MADO_GATEWAY_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    version.commit.cache_clear()
    try:
        with pytest.raises(SystemExit) as exited:
            main([*words, "--version"])
    finally:
        version.commit.cache_clear()
    assert exited.value.code == 0
    expected = f"mado-gateway {__version__} (commit 0123456789abcdef0123456789abcdef01234567)\n"
    assert capsys.readouterr().out == expected


def test_without_a_stamp_the_commit_is_git_head_or_unknown() -> None:
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    ).stdout
    shown = head if (REPO / ".git").exists() and head else "unknown"
    assert re.fullmatch(rf"mado-gateway {re.escape(__version__)} \(commit {shown}\)\n", out)
