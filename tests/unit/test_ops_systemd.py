"""Issue 14 item 8: the systemd unit is valid, hardened, and runs what the README says."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "deploy" / "systemd" / "mado-gateway.service"
BINARY = "/opt/mado-gateway/bin/mado-gateway"


def installed_copy(tmp_path: Path) -> Path:
    """The unit with its binary pointing at this checkout's (verify checks it exists)."""
    binary = Path(sys.executable).with_name("mado-gateway")
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(BINARY, str(binary)))
    return copy


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_unit_verifies_and_its_exposure_is_low(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze (Debian package systemd) is needed"
    unit = installed_copy(tmp_path)
    verified = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stderr
    security = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert security.returncode == 0, security.stdout[-3000:]
    assert "Overall exposure level" in security.stdout


def test_the_unit_runs_as_the_operations_guide_says() -> None:
    found = directives(UNIT.read_text())
    assert found["ExecStart"] == [f"{BINARY} serve --config /etc/mado-gateway/config.yaml"]
    assert found["ExecStartPre"] == [f"{BINARY} check-config /etc/mado-gateway/config.yaml"]
    assert found["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP: reload, renew certs
    assert found["StateDirectory"] == ["mado-gateway"]  # $STATE_DIRECTORY: server default
    assert found["UMask"] == ["0077"]
    assert found["User"] == ["mado-gateway"]
    # room for the drain (server.drain_s, 30 s) and the audit stop (5 s) before SIGKILL
    assert int(found["TimeoutStopSec"][0]) > 30 + 5
    for hardening in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "RestrictSUIDSGID"):
        assert found[hardening][0] in ("yes", "strict"), hardening
    assert found["CapabilityBoundingSet"] == [""]
