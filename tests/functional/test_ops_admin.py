"""Issue 14 item 4: the admin listener — metrics, routes, effective configuration (secrets
redacted), last outcome per upstream base URL — and nothing of it on the public port."""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from peers.faults import FaultUpstream
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port

SECRET = "s3cret-Pa55word-for-the-pacs"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, bytes(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, bytes(error.read())


def get_json(url: str) -> Any:
    code, body = get(url)
    assert code == 200, body
    return json.loads(body)


async def test_the_admin_listener_shows_what_is_loaded_and_what_happened(tmp_path: Path) -> None:
    password = tmp_path / "pacs-password"
    password.write_text(SECRET + "\n")
    async with FaultUpstream() as up:
        config = gateway_config(
            home_community_id="5.6.7.8",
            port=free_port(),
            upstreams={
                "pacs": {
                    "protocol": "wado-rs",
                    "base_urls": ["http://127.0.0.1:9/dead/", up.base_url + "ok/"],
                    "auth": {"type": "basic", "username": "gw", "password_file": str(password)},
                },
                "peer": {"protocol": "xc-wado", "base_urls": [up.base_url + "ok/"]},
            },
            communities={"9.9.9": "peer"},
            sources={"1.2.3": "pacs"},
        )
        with GatewayProcess(tmp_path, config) as gateway:
            admin = gateway.admin_url

            # metrics: on the admin listener only
            code, body = await asyncio.to_thread(get, gateway.url + "/metrics")
            assert code == 404 and b"admin listener" in body
            code, body = await asyncio.to_thread(get, admin + "/metrics")
            assert code == 200 and b"mado_gateway_build_info{" in body
            # the admin listener serves no protocol
            code, _ = await asyncio.to_thread(get, admin + "/wado/homeCommunityId/5.6.7.8")
            assert code == 404
            assert (await asyncio.to_thread(get_json, admin + "/readyz"))["status"] == "ready"

            # routes: the registry, the credential named but never shown
            routes = await asyncio.to_thread(get_json, admin + "/admin/routes")
            assert routes["communities"] == {"9.9.9": "peer"}
            assert routes["sources"] == {"1.2.3": "pacs"}
            pacs = routes["upstreams"]["pacs"]
            assert pacs["protocol"] == "wado-rs"
            assert pacs["auth"] == {
                "type": "basic",
                "username": "gw",
                "secret": "<redacted>",
                "source": f"password_file {password}",
            }

            # config: every section, defaults filled in, the file's digest
            raw = (await asyncio.to_thread(get, admin + "/admin/config"))[1]
            assert SECRET.encode() not in raw
            effective = json.loads(raw)
            assert effective["server"]["port"] == gateway.port
            assert effective["server"]["drain_s"] == 30.0
            assert effective["audit"]["journal"]["max_bytes"] == 256 * 1024 * 1024
            assert effective["upstreams"]["pacs"]["auth"]["secret"] == "<redacted>"
            digest = hashlib.sha256(gateway.config_file.read_bytes()).hexdigest()
            assert effective["source"] == {
                "path": str(gateway.config_file.resolve()),
                "sha256": digest,
            }

            # upstreams: nothing tried yet, then the failover's two attempts
            table = await asyncio.to_thread(get_json, admin + "/admin/upstreams")
            assert {row["at"] for row in table["upstreams"]} == {None}
            url = f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/1.2"
            assert (await asyncio.to_thread(get, url))[0] == 200
            rows = {
                (row["upstream"], row["base_url"]): row
                for row in (await asyncio.to_thread(get_json, admin + "/admin/upstreams"))[
                    "upstreams"
                ]
            }
            dead = rows[("pacs", "http://127.0.0.1:9/dead/")]
            assert (dead["failure"], dead["status"]) == ("connect", None)
            alive = rows[("pacs", f"http://127.0.0.1:{up.port}/ok/")]
            assert (alive["status"], alive["end"]) == (200, "complete")
            assert rows[("peer", f"http://127.0.0.1:{up.port}/ok/")]["at"] is None
            assert alive["request_id"] == dead["request_id"]
            access = next(
                json.loads(line)
                for line in gateway.log().splitlines()
                if alive["request_id"] in line and '"msg":"exchange"' in line
            )
            assert access["base_url"] == alive["base_url"]
            assert access["failures"] == ["pacs http://127.0.0.1:9/dead/: connect"]
            assert (access["study"], access["retrieve_location_uid"]) == ("1.2", "1.2.3")

    # one start line: where, as what, with what, from which file (item 5)
    started = [
        json.loads(line) for line in gateway.log().splitlines() if '"gateway started"' in line
    ]
    assert len(started) == 1
    line = started[0]
    assert line["listen"] == f"http://127.0.0.1:{gateway.port}/wado/"
    assert line["admin"] == f"http://127.0.0.1:{gateway.admin_port}"
    assert line["roles"] == ["initiating", "responding"]
    assert (line["communities"], line["sources"], line["upstreams"], line["workers"]) == (1, 1, 2, 1)
    assert line["config"] == str(gateway.config_file.resolve())
    assert line["config_sha256"] == digest
    assert len(line["commit"]) == 40 or line["commit"] == "unknown"
    stopped = [line for line in gateway.log().splitlines() if '"gateway stopped"' in line]
    assert len(stopped) == 1
