"""Issue 14 item 1: ``serve --workers 2`` — two processes on one port, scraped as one."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

from peers.faults import FaultUpstream
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port

HCID = "5.6.7.8"


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return bytes(answer.read())


def sample(text: str, name: str, *labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include every one of ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((name + " ", name + "{")) and all(label in line for label in labels):
            total += float(line.rsplit(" ", 1)[1])
    return total


def log_lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    lines = []
    for line in gateway.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def wait_for(predicate: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


async def test_two_workers_serve_one_port_and_are_scraped_as_one(tmp_path: Path) -> None:
    async with FaultUpstream() as up:
        config = gateway_config(
            home_community_id=HCID,
            port=free_port(),
            upstreams={"src": {"protocol": "wado-rs", "base_urls": [up.base_url + "ok/"]}},
            sources={"1.2.3": "src"},
        )
        config["server"]["workers"] = 2
        url = "homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/1.2"
        with GatewayProcess(tmp_path, config) as gateway:
            wait_for(lambda: '"gateway started"' in gateway.log())  # both workers listen
            # each urlopen is a new connection, spread by the kernel over both workers
            for _ in range(24):
                assert len(await _fetch(gateway.endpoint + url)) == len(up.body)
            lines = log_lines(gateway)
            served_by = {line["worker"] for line in lines if line.get("msg") == "exchange"}
            assert served_by == {0, 1}
            started = [line for line in lines if line.get("msg") == "gateway started"]
            assert len(started) == 1 and started[0]["workers"] == 2

            # one exposition for both: every request counted once, one build_info line
            text = (await _fetch(gateway.admin_url + "/metrics")).decode()
            requests = ("mado_gateway_requests_total", 'route="source"', 'status="200"')
            assert sample(text, *requests) == 24
            assert sample(text, "mado_gateway_in_flight_requests") == 0
            assert text.count("mado_gateway_build_info{") == 1

            # one journal each, and one audit file both append to
            state = gateway.folder / "gateway-audit"
            assert (state / "journal" / "lock").exists()
            assert (state / "journal-1" / "lock").exists()

            def audited() -> bool:
                log = state / "audit.log"
                return log.exists() and log.read_text().count("110104") >= 24

            wait_for(audited)

            # a worker that dies is started again; its counts stay in the sum
            worker = next(
                line["pid"] for line in lines if line.get("msg") == "worker started"
            )
            os.kill(worker, signal.SIGKILL)
            wait_for(lambda: gateway.log().count('"worker started"') == 3)
            for _ in range(6):
                await _fetch(gateway.endpoint + url)
            text = (await _fetch(gateway.admin_url + "/metrics")).decode()
            assert sample(text, *requests) == 30
        stopped = [line for line in log_lines(gateway) if line.get("msg") == "gateway stopped"]
        assert stopped and stopped[0]["status"] == 0


async def _fetch(url: str) -> bytes:
    return await asyncio.to_thread(fetch, url)
