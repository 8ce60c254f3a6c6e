"""Operating the configuration: check-config, SIGHUP reload (good and broken), health, metrics."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from peers.faults import FaultUpstream
from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port

EXAMPLES = REPO / "examples"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_shipped_examples_are_valid() -> None:
    files = sorted(str(p) for p in EXAMPLES.glob("*.yaml"))
    assert files, "examples/ must ship commented configurations"
    result = run_cli("check-config", *files)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": OK") == len(files)


def test_check_config_names_every_problem(tmp_path: Path) -> None:
    document = yaml.safe_load((EXAMPLES / "responding-gateway.yaml").read_text())
    document["sources"] = {"1.2.03": next(iter(document["upstreams"]))}  # malformed OID
    document["communities"] = {"9.9.9": "nowhere"}  # unknown upstream
    first = next(iter(document["upstreams"].values()))
    first["base_urls"] = ["not a url"]  # not a URL
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    result = run_cli("check-config", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "sources.1.2.03" in result.stderr and "leading zeros" in result.stderr
    assert "communities.9.9.9" in result.stderr and "unknown upstream 'nowhere'" in result.stderr
    assert "base_urls[0]" in result.stderr and "'not a url'" in result.stderr


def test_serve_with_a_bad_config_exits_with_a_message(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("self: {home_community_id: ACME}\n")
    result = run_cli("serve", "--config", str(bad))
    assert result.returncode == 1
    assert "self.home_community_id" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_usage_errors_are_messages(tmp_path: Path) -> None:
    assert run_cli().returncode == 2
    missing = run_cli("check-config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 1
    assert "No such file" in missing.stderr


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code


def fetch_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


def metric(gateway: GatewayProcess, name: str) -> float:
    with urllib.request.urlopen(gateway.admin_url + "/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


def wait_for(predicate: Any, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_sighup_swaps_good_config_and_keeps_old_one_on_a_broken_file(tmp_path: Path) -> None:
    async with FaultUpstream() as up:
        config = gateway_config(
            home_community_id="5.6.7.8",
            port=free_port(),
            upstreams={"src": {"protocol": "wado-rs", "base_urls": [up.base_url + "ok/"]}},
            sources={"1.2.3": "src"},
        )
        with GatewayProcess(tmp_path, config) as gateway:
            old = f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/1.2"
            new = old.replace("/1.2.3/", "/1.2.4/")
            assert await asyncio.to_thread(status_of, old) == 200
            assert await asyncio.to_thread(status_of, new) == 404

            # 1. a broken file: the old registry keeps serving, the log and a metric say so
            gateway.config_file.write_text("self: {home_community_id: 1.02}\nupstreams: {}\n")
            gateway.send_signal(signal.SIGHUP)
            await asyncio.to_thread(
                wait_for,
                lambda: (
                    metric(gateway, 'mado_gateway_registry_reloads_total{result="failure"}') == 1
                ),
            )
            assert metric(gateway, "mado_gateway_registry_last_reload_successful") == 0
            assert await asyncio.to_thread(status_of, old) == 200
            rejected = [
                json.loads(line) for line in gateway.log().splitlines() if "reload rejected" in line
            ]
            assert rejected and any("home_community_id" in p for p in rejected[0]["problems"])

            # 1b. routing fine but another section broken: refused too, as a restart would be
            broken_server = copy.deepcopy(config)
            broken_server["server"]["port"] = "eighty"
            gateway.write_config(broken_server)
            gateway.send_signal(signal.SIGHUP)
            await asyncio.to_thread(
                wait_for,
                lambda: (
                    metric(gateway, 'mado_gateway_registry_reloads_total{result="failure"}') == 2
                ),
            )
            assert await asyncio.to_thread(status_of, old) == 200

            # 2. a good file: the new registry answers
            updated = copy.deepcopy(config)
            updated["sources"] = {"1.2.4": "src"}
            gateway.write_config(updated)
            gateway.send_signal(signal.SIGHUP)
            await asyncio.to_thread(
                wait_for,
                lambda: metric(gateway, "mado_gateway_registry_last_reload_successful") == 1,
            )
            assert await asyncio.to_thread(status_of, new) == 200
            assert await asyncio.to_thread(status_of, old) == 404
            ready = await asyncio.to_thread(fetch_json, gateway.url + "/readyz")
            assert ready["registry_generation"] == 2


def test_health_endpoints_and_metric_hygiene(tmp_path: Path) -> None:
    config = gateway_config(
        home_community_id="5.6.7.8",
        port=free_port(),
        upstreams={"src": {"protocol": "wado-rs", "base_urls": ["http://127.0.0.1:9/"]}},
        sources={"1.2.3": "src"},
    )
    with GatewayProcess(tmp_path, config) as gateway:
        assert status_of(gateway.url + "/livez") == 200
        assert status_of(gateway.url + "/readyz") == 200
        study = "1.2.840.113619.2.207.28521.42888.1640475282.450"
        status_of(
            f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/{study}"
        )
        assert status_of(gateway.url + "/metrics") == 404  # only on the admin listener
        with urllib.request.urlopen(gateway.admin_url + "/metrics") as answer:
            text = answer.read().decode()
        assert 'mado_gateway_routing_lookups_total{result="source"} 1.0' in text
        assert 'mado_gateway_upstream_errors_total{reason="connect",upstream="src"} 1.0' in text
        assert "mado_gateway_build_info" in text
        # no OID, UID or URL in any label value (bucket bounds "le" are numbers by design)
        samples = [line for line in text.splitlines() if line and not line.startswith("#")]
        values = [
            v
            for line in samples
            for k, v in re.findall(r'(\w+)="([^"]*)"', line)
            if k not in ("le", "version")
        ]
        assert values
        assert not [v for v in values if re.fullmatch(r"\d+(\.\d+)+", v) or "://" in v or "/" in v]
