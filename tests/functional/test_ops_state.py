"""Issue 14 item 7: state under ``server.state_directory``, private files, one gateway per
state directory, and the audit file handed over to logrotate (rename, SIGHUP)."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from peers.faults import FaultUpstream
from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port


def wait_for(predicate: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def retrieve(gateway: GatewayProcess) -> None:
    url = f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/1.2"
    with urllib.request.urlopen(url, timeout=10) as answer:
        answer.read()


async def test_state_is_private_claimed_once_and_the_audit_file_rotates(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o755)  # made by hand, as a package's post-install might: tightened
    (state / "audit").mkdir(mode=0o700)
    leftover = state / "audit" / "audit.log"
    leftover.write_text("")
    leftover.chmod(0o644)  # as an earlier release left it: patient names readable by all
    async with FaultUpstream() as up:
        config = gateway_config(
            home_community_id="5.6.7.8",
            port=free_port(),
            upstreams={"src": {"protocol": "wado-rs", "base_urls": [up.base_url + "ok/"]}},
            sources={"1.2.3": "src"},
        )
        config["server"]["state_directory"] = str(state)
        config["audit"] = {}  # every audit path its default, relative: under the state
        with GatewayProcess(tmp_path, config) as gateway:
            await asyncio.to_thread(retrieve, gateway)
            audit_log = state / "audit" / "audit.log"
            wait_for(lambda: "110104" in audit_log.read_text())
            assert (state / "audit" / "journal" / "lock").exists()
            assert "audit file was readable by others; made 0600" in gateway.log()
            for path in state.rglob("*"):
                mode = stat.S_IMODE(path.stat().st_mode)
                assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))

            # a second gateway with the same state directory does not start
            second = dict(config, server=dict(config["server"], port=free_port()))
            second["server"]["admin"] = {"port": free_port()}
            second_file = tmp_path / "second.yaml"
            second_file.write_text(yaml.safe_dump(second))
            refused = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "gateway", "serve", "--config", str(second_file)],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=60,
                check=False,
            )
            assert refused.returncode == 1
            assert f"is used by another gateway (pid {gateway.pid})" in refused.stderr

            # logrotate: the file is moved, SIGHUP, the next event starts a new file
            rotated = audit_log.with_name("audit.log.1")
            audit_log.rename(rotated)
            gateway.send_signal(signal.SIGHUP)
            wait_for(lambda: '"audit_files_reopened":1' in gateway.log())
            await asyncio.to_thread(retrieve, gateway)
            wait_for(lambda: audit_log.exists() and "110104" in audit_log.read_text())
            assert stat.S_IMODE(audit_log.stat().st_mode) == 0o600
            assert rotated.read_text().count("110104") == 1
            assert os.stat(rotated).st_ino != os.stat(audit_log).st_ino
