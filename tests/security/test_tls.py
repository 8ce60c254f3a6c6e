"""Transport security with real certificates made in the test (trustme).

Outbound: an upstream whose certificate the profile does not trust is refused (502
``upstream-unavailable``, reason ``tls``); trusted, it is served. Inbound: mutual TLS refuses
a client without a certificate, and the subject allow-list refuses a certificate that is
not on it. End to end: two gateway processes with mutual TLS between them relay a study
byte for byte; without its client certificate the initiating gateway answers 502
problem+json and logs why.
"""

from __future__ import annotations

import json
import re
import signal
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme

from gateway.relay.tls import peer_subject, server_context
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from tests.security.harness import Scripted, fetch, gateway
from tests.security.pki import STUDY, Pki, responding_over_tls


def client_context(pki: Pki, cert: tuple[str, str, str] | None) -> ssl.SSLContext:
    return pki.client_context(cert)


async def test_an_untrusted_upstream_certificate_is_refused(pki: Pki) -> None:
    cert, key, _ = pki.leaf(pki.server_ca, "upstream")
    upstream_tls = server_context(
        cert_file=cert, key_file=key, client_ca_file=None, require_client_cert=False
    )
    other_ca = pki.write_ca(trustme.CA(), "unrelated-ca")
    async with Scripted(ssl_context=upstream_tls) as up:
        upstreams: dict[str, dict[str, Any]] = {
            "untrusted": {"base_urls": [up.url + "ok/"], "tls": {"ca_file": other_ca}},
            "system-store": {"base_urls": [up.url + "ok/"]},
            "trusted": {
                "base_urls": [up.url + "ok/"],
                "tls": {"ca_file": pki.write_ca(pki.server_ca, "server-ca")},
            },
        }
        async with gateway(upstreams) as gw:
            for name in ("untrusted", "system-store"):
                status, _, body = await fetch(gw.url(name))
                problem = json.loads(body)
                assert status == 502
                assert problem["type"] == "urn:mado-gateway:problem:upstream-unavailable"
                assert "(tls)" in problem["detail"]
                errors = gw.metric(
                    "mado_gateway_upstream_errors_total", upstream=name, reason="tls"
                )
                assert errors == 1
            assert gw.events.kinds() == ["tls-failure", "tls-failure"]
            assert "certificate-verify-failed" in gw.events.alerts[0][2]
            status, _, body = await fetch(gw.url("trusted"))
            assert (status, body) == (200, up.body)
    assert len(up.seen) == 1  # the refused handshakes never sent a request


async def test_inbound_mutual_tls_and_the_subject_allow_list(pki: Pki) -> None:
    cert, key, _ = pki.leaf(pki.server_ca, "gateway")
    allowed = pki.leaf(pki.client_ca, "gateway-b")
    stranger = pki.leaf(pki.client_ca, "gateway-x")
    server = {
        "tls": {
            "cert_file": cert,
            "key_file": key,
            "client_ca_file": pki.write_ca(pki.client_ca, "client-ca"),
            "allowed_client_subjects": [allowed[2]],
        }
    }
    inbound = server_context(
        cert_file=cert,
        key_file=key,
        client_ca_file=pki.write_ca(pki.client_ca, "client-ca"),
        require_client_cert=True,
    )
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, server=server, ssl_context=inbound) as gw,
    ):
        assert gw.url("ok").startswith("https://")
        with pytest.raises(aiohttp.ClientError):  # no client certificate: no handshake
            await fetch(gw.url("ok"), ssl=client_context(pki, None))
        status, _, body = await fetch(gw.url("ok"), ssl=client_context(pki, allowed))
        assert (status, body) == (200, up.body)
        status, _, body = await fetch(gw.url("ok"), ssl=client_context(pki, stranger))
        assert status == 403
        assert json.loads(body)["type"] == "urn:mado-gateway:problem:client-not-allowed"
        assert gw.events.alerts[-1][:2] == ("client-refused", stranger[2])
    assert len(up.seen) == 1


def test_peer_subject_is_rfc4514_most_specific_first() -> None:
    peercert = {
        "subject": ((("countryName", "FR"),), (("organizationName", "B"),), (("commonName", "gw"),))
    }
    assert peer_subject(peercert) == "CN=gw,O=B,C=FR"
    assert peer_subject({}) is None


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=20) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_two_gateways_with_mutual_tls(pki: Pki, source: str, tmp_path: Path) -> None:
    server_cert = pki.leaf(pki.server_ca, "responding-gateway")
    client_cert = pki.leaf(pki.client_ca, "initiating-gateway")
    server_ca = pki.write_ca(pki.server_ca, "server-ca")
    rig = responding_over_tls(pki, source, server_cert, allowed_client_subjects=[client_cert[2]])
    tls_profile = {"ca_file": server_ca, "cert_file": client_cert[0], "key_file": client_cert[1]}
    with GatewayProcess(
        tmp_path / "rig", rig, name="rig", client_ssl=client_context(pki, client_cert)
    ) as responding:
        iig = gateway_config(
            home_community_id="2.2.2",
            port=free_port(),
            upstreams={
                "rig": {
                    "protocol": "xc-wado",
                    "base_urls": [responding.endpoint],
                    "tls": tls_profile,
                }
            },
            communities={"1.1.1": "rig"},
        )
        with GatewayProcess(tmp_path / "iig", iig, name="iig") as initiating:
            path = f"homeCommunityId/1.1.1/RetrieveLocationUID/1.2.3.4/studies/{STUDY}"
            direct = get(source + f"studies/{STUDY}")
            assert direct[0] == 200
            assert get(initiating.endpoint + path) == direct  # byte-identical, through mTLS

            # The responding gateway's audit trail names the requester by its verified
            # certificate subject, with its address as the network access point.
            audit_log = responding.audit_folder / "audit.log"
            deadline = time.monotonic() + 10
            while b'<EventID csd-code="110104"' not in (
                audit_log.read_bytes() if audit_log.exists() else b""
            ):
                assert time.monotonic() < deadline, "no Instances Transferred audited"
                time.sleep(0.05)
            transferred = next(
                line for line in audit_log.read_bytes().splitlines() if b"110104" in line
            )
            assert re.search(
                rb'UserID="[^"]*initiating-gateway[^"]*" UserIsRequestor="true"', transferred
            )

            # Without its client certificate the initiating gateway cannot get through.
            del iig["upstreams"]["rig"]["tls"]["cert_file"]
            del iig["upstreams"]["rig"]["tls"]["key_file"]
            initiating.write_config(iig)
            initiating.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "configuration reloaded" not in initiating.log():
                assert time.monotonic() < deadline, initiating.log()
                time.sleep(0.05)
            status, body = get(initiating.endpoint + path)
            problem = json.loads(body)
            assert status == 502
            assert problem["type"] == "urn:mado-gateway:problem:upstream-unavailable"
            assert "(tls)" in problem["detail"]
            log = initiating.log()
            assert "TLS with upstream failed" in log
            assert "peer-closed-after-handshake" in log, log
