"""The IHE sample manifests are read from outside the repository (``../shared/samples`` or
``MADO_SAMPLES_DIR``); where they are absent the tests that need them fail and say where to put
them (never a skip)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from peers.gateway import REPO


def _probe(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import tests.samples as s, pytest\n"
        "print(s.SAMPLES)\n"
        "try:\n"
        "    print(s.kos_sample())\n"
        "except pytest.fail.Exception as e:\n"
        "    print('FAIL', e.msg)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin", **env},
        check=True,
    )


def test_the_repository_carries_no_copy_of_the_samples() -> None:
    assert not (REPO / "tests" / "data" / "mado-samples").exists()
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout.splitlines()
    assert [f for f in tracked if f.endswith(("MADO_KOS_A.dcm", "-bundle.json"))] == []


def test_default_location_is_shared_samples_beside_the_clone() -> None:
    out = _probe({}).stdout.splitlines()
    assert Path(out[0]) == REPO.parent / "shared" / "samples"


def test_absent_samples_fail_naming_the_variable_and_the_path(tmp_path: Path) -> None:
    out = _probe({"MADO_SAMPLES_DIR": str(tmp_path)}).stdout
    assert out.splitlines()[0] == str(tmp_path)
    assert "FAIL" in out
    assert "MADO_SAMPLES_DIR" in out
    assert str(tmp_path / "MADO_KOS_A.dcm") in out


def test_present_samples_are_found(tmp_path: Path) -> None:
    (tmp_path / "MADO_KOS_A.dcm").write_bytes(b"x")
    out = _probe({"MADO_SAMPLES_DIR": str(tmp_path)}).stdout.splitlines()
    assert out[1] == str(tmp_path / "MADO_KOS_A.dcm")
