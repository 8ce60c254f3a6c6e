"""TLS failures reach the audit trail (checklist item 53; issue 16, item 18), end to end.

Checklist item 53: "TLS handshake/node authentication failures emit Security Alert (110113)
with EventTypeCode 110126." Two gateway processes, each with the default file transport of
the audit trail; every line of each trail is validated against the DICOM audit schema.

Inbound, at the responding gateway (mutual TLS required): a client without a certificate, a
client whose certificate no trusted CA signed, and plain HTTP sent to the TLS port each come
from their own loopback address (127.0.0.2, .3, .4), and each produces one Security Alert
whose performer is that address, plus a WARNING log line. A second failure from 127.0.0.2
inside the alert interval is counted but not alerted again (a flood cannot flood the
journal), and a bare TCP connect-and-close (a load balancer's probe, 127.0.0.5) is counted
as ``closed`` and not alerted.

Outbound, at the initiating gateway: an upstream whose certificate its profile does not
trust, and an upstream that refuses it for lack of a client certificate, each produce a
Security Alert naming the upstream URL — and the refusing side alerts too.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import trustme
from lxml import etree

from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from tests.security.pki import STUDY, Pki, responding_over_tls
from tests.unit.audit.auditcheck import validate, xml_of

PATH = f"homeCommunityId/1.1.1/RetrieveLocationUID/1.2.3.4/studies/{STUDY}"


def node_authentication_alerts(audit_log: Path) -> list[etree._Element]:
    """Every schema-valid 110113 / 110126 message in an audit file (all lines validated)."""
    alerts = []
    lines = audit_log.read_bytes().splitlines() if audit_log.exists() else []
    for line in lines:
        root = validate(xml_of(line))
        if root.find("EventIdentification/EventID").get("csd-code") != "110113":
            continue
        types = [t.get("csd-code") for t in root.iter("EventTypeCode")]
        assert types == ["110126"], types
        alerts.append(root)
    return alerts


def wait_for_alerts(audit_log: Path, count: int, timeout_s: float = 15) -> list[etree._Element]:
    deadline = time.monotonic() + timeout_s
    while len(alerts := node_authentication_alerts(audit_log)) < count:
        assert time.monotonic() < deadline, f"{len(alerts)} alert(s) of {count} in {audit_log}"
        time.sleep(0.1)
    return alerts


def performers(alert: etree._Element) -> list[tuple[str | None, str | None]]:
    return [
        (p.get("NetworkAccessPointID"), p.get("NetworkAccessPointTypeCode"))
        for p in alert.iter("ActiveParticipant")
        if p.get("UserIsRequestor") == "false"
    ]


def subject_of(alert: etree._Element) -> str:
    return str(alert.find("ParticipantObjectIdentification").get("ParticipantObjectID"))


def tls_attempt(port: int, source: str, context: ssl.SSLContext) -> None:
    """Connect from ``source``, shake hands, send a request, read until the server closes."""
    with socket.create_connection(
        ("127.0.0.1", port), timeout=5, source_address=(source, 0)
    ) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
                while tls.recv(4096):
                    pass
        except (ssl.SSLError, OSError):
            pass  # the refusal, as the client sees it: what matters is the server's side


def plain_attempt(port: int, source: str, data: bytes) -> None:
    with socket.create_connection(
        ("127.0.0.1", port), timeout=5, source_address=(source, 0)
    ) as raw:
        if data:
            raw.sendall(data)
            try:
                while raw.recv(4096):
                    pass
            except OSError:
                pass


def refused(url: str) -> dict[str, Any]:
    """The problem document of a 502 answer."""
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=20)
    assert caught.value.code == 502
    problem: dict[str, Any] = json.loads(caught.value.read())
    return problem


def metric(gateway: GatewayProcess, reason: str) -> float | None:
    url = gateway.admin_url + "/metrics"  # the admin listener: plain HTTP on loopback
    with urllib.request.urlopen(url, timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(f'mado_gateway_inbound_tls_failures_total{{reason="{reason}"}} '):
                return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.checklist(53)
def test_tls_failures_in_both_directions_are_audited_as_node_authentication(
    pki: Pki, source: str, tmp_path: Path
) -> None:
    server_cert = pki.leaf(pki.server_ca, "responding-gateway")
    good_client = pki.leaf(pki.client_ca, "monitoring")
    stranger_ca = trustme.CA()
    stranger = pki.leaf(stranger_ca, "stranger")
    rig = responding_over_tls(pki, source, server_cert)
    with GatewayProcess(
        tmp_path / "rig", rig, name="rig", client_ssl=pki.client_context(good_client)
    ) as responding:
        port = responding.port
        rig_audit = responding.audit_folder / "audit.log"

        tls_attempt(port, "127.0.0.2", pki.client_context(None))  # no client certificate
        tls_attempt(port, "127.0.0.3", pki.client_context(stranger))  # untrusted certificate
        plain_attempt(port, "127.0.0.4", b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")  # not TLS
        tls_attempt(port, "127.0.0.2", pki.client_context(None))  # again: counted, not alerted
        plain_attempt(port, "127.0.0.5", b"")  # a TCP probe: counted, not alerted

        alerts = wait_for_alerts(rig_audit, 3)
        time.sleep(0.5)  # what else might come: the repeat and the probe must not
        alerts = node_authentication_alerts(rig_audit)
        by_peer = {str(performers(a)[0][0]): a for a in alerts}
        assert len(alerts) == 3, [performers(a) for a in alerts]
        assert set(by_peer) == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
        for address, alert in by_peer.items():
            assert performers(alert) == [(address, "2")]  # 2: an IP address
            assert subject_of(alert).startswith(address + ":")
            assert alert.find("EventIdentification").get("EventOutcomeIndicator") == "8"
        log = responding.log()
        warnings = [
            json.loads(line)
            for line in log.splitlines()
            if '"security alert"' in line and '"tls-failure"' in line
        ]
        assert len(warnings) == 3 and {w["level"] for w in warnings} == {"warning"}
        assert metric(responding, "no-client-certificate") == 2
        assert metric(responding, "certificate-verify-failed") == 1
        assert metric(responding, "not-tls") == 1
        assert metric(responding, "closed") == 1

        # Outbound: the initiating gateway's profile does not trust the responding gateway
        # (certificate-verify-failed), then trusts it but has no client certificate (the
        # responding gateway refuses it after the handshake).
        iig = gateway_config(
            home_community_id="2.2.2",
            port=free_port(),
            upstreams={
                "rig": {
                    "protocol": "xc-wado",
                    "base_urls": [responding.endpoint],
                    "tls": {"ca_file": pki.write_ca(stranger_ca, "stranger-ca")},
                }
            },
            communities={"1.1.1": "rig"},
        )
        with GatewayProcess(tmp_path / "iig", iig, name="iig") as initiating:
            iig_audit = initiating.audit_folder / "audit.log"
            assert "(tls)" in refused(initiating.endpoint + PATH)["detail"]
            wait_for_alerts(iig_audit, 1)
        iig["upstreams"]["rig"]["tls"] = {"ca_file": pki.write_ca(pki.server_ca, "server-ca")}
        del iig["audit"]  # a trail of its own
        with GatewayProcess(tmp_path / "iig2", iig, name="iig2") as initiating:
            iig_audit2 = initiating.audit_folder / "audit.log"
            assert "(tls)" in refused(initiating.endpoint + PATH)["detail"]
            wait_for_alerts(iig_audit2, 1)
        # … and the responding gateway saw that handshake fail (from 127.0.0.1).
        alerts = wait_for_alerts(rig_audit, 4)
        assert {performers(a)[0][0] for a in alerts} == {
            "127.0.0.1",
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.4",
        }

    for audit_log, reason in (
        (iig_audit, "certificate-verify-failed"),
        (iig_audit2, "peer-closed-after-handshake"),
    ):
        (alert,) = node_authentication_alerts(audit_log)
        assert subject_of(alert) == responding.url  # the upstream's origin
        detail = alert.find("ParticipantObjectIdentification/ParticipantObjectDetail")
        assert reason.encode() in base64.b64decode(detail.get("value"))
