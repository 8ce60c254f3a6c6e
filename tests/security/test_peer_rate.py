"""Peer gateways have their own rate class (issue 16, item 16), with two gateway processes.

An initiating gateway is one client to the responding gateway, however many viewers stand
behind it. The responding gateway here has a deliberately small per-client limit (a bucket
of 10 requests refilled at 5 per second) and lists the initiating gateway's certificate
subject under ``server.peer_gateways``: a burst of 40 requests relayed by the initiating
gateway over mutual TLS all pass, while the same burst from a plain client that presents a
valid certificate of the same CA is throttled.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.settings import PEER_RATE_LIMIT, RateLimit, parse_server_settings
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from routing.errors import ConfigError
from tests.security.pki import STUDY, Pki, responding_over_tls

BURST = 40
PATH = f"homeCommunityId/1.1.1/RetrieveLocationUID/1.2.3.4/studies/{STUDY}"


def get(url: str, context: ssl.SSLContext | None = None) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20, context=context) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        problem = json.loads(error.read())
        assert problem["type"] == "urn:mado-gateway:problem:rate-limited", problem
        return error.code


def test_a_peer_gateway_is_not_throttled_like_one_client(
    pki: Pki, source: str, tmp_path: Path
) -> None:
    server_cert = pki.leaf(pki.server_ca, "responding-gateway")
    peer_cert = pki.leaf(pki.client_ca, "initiating-gateway")
    plain_cert = pki.leaf(pki.client_ca, "a-viewer")
    rig = responding_over_tls(pki, source, server_cert)
    rig["server"]["rate_limit"] = {"requests_per_s": 5, "burst": 10}
    rig["server"]["peer_gateways"] = {"subjects": [peer_cert[2]]}
    plain = pki.client_context(plain_cert)
    with GatewayProcess(tmp_path / "rig", rig, name="rig", client_ssl=plain) as responding:
        iig = gateway_config(
            home_community_id="2.2.2",
            port=free_port(),
            upstreams={
                "rig": {
                    "protocol": "xc-wado",
                    "base_urls": [responding.endpoint],
                    "tls": {
                        "ca_file": pki.write_ca(pki.server_ca, "server-ca"),
                        "cert_file": peer_cert[0],
                        "key_file": peer_cert[1],
                    },
                }
            },
            communities={"1.1.1": "rig"},
        )
        with GatewayProcess(tmp_path / "iig", iig, name="iig") as initiating:
            through_peer = [get(initiating.endpoint + PATH) for _ in range(BURST)]
            assert through_peer == [200] * BURST
            direct = [get(responding.endpoint + PATH, plain) for _ in range(BURST)]
    assert direct[:5] == [200] * 5
    assert direct.count(429) >= BURST // 2, direct


def test_peer_gateways_settings() -> None:
    default = parse_server_settings({}).peer_gateways
    assert default.subjects == ()
    assert default.rate_limit == PEER_RATE_LIMIT
    assert PEER_RATE_LIMIT.requests_per_s >= 10 * RateLimit().requests_per_s
    with pytest.raises(ConfigError) as caught:
        parse_server_settings(
            {
                "server": {
                    "peer_gateways": {
                        "subjects": ["CN=gw", "not a subject"],
                        "rate_limit": {"burst": 0},
                        "bogus": 1,
                    }
                }
            }
        )
    text = "\n".join(str(p) for p in caught.value.problems)
    for expected in (
        "server.peer_gateways.subjects[1]: not a subject",
        "server.peer_gateways.subjects: needs server.tls.client_ca_file",
        "server.peer_gateways.rate_limit.burst",
        "server.peer_gateways.bogus: unknown field",
    ):
        assert expected in text, text
