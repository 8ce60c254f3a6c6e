"""Issue 14 items 5 and 8: a wheel installs without the Makefile, carries the commit it was
built from and the OpenAPI document, and its command runs (docs/operations.md, "Install")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from gateway import __version__

REPO = Path(__file__).resolve().parents[2]


def run(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, check=True, timeout=300, cwd=cwd, env=env
    )


def test_a_wheel_installs_and_names_its_commit(tmp_path: Path) -> None:
    head = run("git", "-C", str(REPO), "rev-parse", "HEAD").stdout.strip()
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO))
    (wheel,) = tmp_path.glob("mado_gateway-*.whl")
    target = tmp_path / "installed"
    run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel))
    assert (target / "gateway" / "openapi.yaml").is_file()
    # the installed copy, not this checkout: no git beside it, the stamp says the commit
    shown = run(
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'mado-gateway'; import gateway, gateway.cli;"
        "print(gateway.__file__); gateway.cli.main(['check-config', '--version'])",
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert shown[0] == str(target / "gateway" / "__init__.py")
    assert shown[1] == f"mado-gateway {__version__} (commit {head})"
