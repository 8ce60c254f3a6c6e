"""The inbound TLS site and its failure reports (checklist item 53), in process over loopback.

The site must serve exactly as aiohttp's own TLS site does (client certificate visible to
the handler, keep-alive, data sent right behind the handshake) while every failed handshake
is counted and the TLS-level ones are alerted, rate-limited per peer and overall.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.edge.tlsaccept import REASONS, HandshakeFailures, TlsSite, failure_reason
from gateway.relay.tls import peer_subject, server_context
from gateway.settings import ServerTls, parse_server_settings
from peers.net import free_port
from routing.errors import ConfigError
from tests.security.pki import Pki


class Recorded:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str, str, str | None]] = []

    def security_alert(
        self, kind: str, target: str, detail: str, *, performer: str | None = None
    ) -> None:
        self.alerts.append((kind, target, detail, performer))


@dataclass
class Site:
    port: int
    failures: HandshakeFailures
    events: Recorded
    registry: CollectorRegistry

    def failed(self, reason: str) -> float:
        value = self.registry.get_sample_value(
            "mado_gateway_inbound_tls_failures_total", {"reason": reason}
        )
        return value or 0.0


@asynccontextmanager
async def tls_site(pki: Pki, *, handshake_timeout_s: float = 60.0) -> AsyncIterator[Site]:
    cert, key, _ = pki.leaf(pki.server_ca, "gateway")
    client_ca = pki.write_ca(pki.client_ca, "client-ca")
    settings = ServerTls(
        cert_file=cert,
        key_file=key,
        client_ca_file=client_ca,
        handshake_timeout_s=handshake_timeout_s,
    )

    async def whoami(request: web.Request) -> web.Response:
        return web.Response(text=peer_subject(request.get_extra_info("peercert")) or "-")

    app = web.Application()
    app.router.add_get("/whoami", whoami)
    runner = web.AppRunner(app)
    await runner.setup()
    events, registry = Recorded(), CollectorRegistry()
    failures = HandshakeFailures(events, registry, settings)
    port = free_port()
    site = TlsSite(
        runner,
        "127.0.0.1",
        port,
        ssl_context=server_context(
            cert_file=cert, key_file=key, client_ca_file=client_ca, require_client_cert=True
        ),
        failures=failures,
        handshake_timeout_s=settings.handshake_timeout_s,
    )
    await site.start()
    try:
        yield Site(port=port, failures=failures, events=events, registry=registry)
    finally:
        await runner.cleanup()


async def test_the_site_serves_like_aiohttps_own(pki: Pki) -> None:
    client = pki.leaf(pki.client_ca, "viewer")
    async with tls_site(pki) as site:
        context = pki.client_context(client)
        async with aiohttp.ClientSession() as session:
            for _ in range(5):  # one kept-alive connection, several requests
                async with session.get(
                    f"https://127.0.0.1:{site.port}/whoami", ssl=context
                ) as answer:
                    assert answer.status == 200
                    assert await answer.text() == client[2]
        # The request written right behind the handshake, in one go, is served.
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", site.port, ssl=context, server_hostname="127.0.0.1"
        )
        writer.write(
            b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\nGET /whoami HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n"
        )
        raw = await asyncio.wait_for(reader.read(), timeout=5)
        writer.close()
        assert raw.count(b"HTTP/1.1 200 OK") == 2
        assert raw.count(client[2].encode()) == 2
    assert site.events.alerts == []
    assert all(site.failed(reason) == 0 for reason in REASONS)


async def test_a_silent_connection_times_out_unalerted_and_stop_does_not_wait(pki: Pki) -> None:
    async with tls_site(pki, handshake_timeout_s=0.3) as site:
        _, idle = await asyncio.open_connection("127.0.0.1", site.port)
        await asyncio.sleep(0.6)
        assert site.failed("timeout") == 1
        _, second = await asyncio.open_connection("127.0.0.1", site.port)
    # the site stopped with a handshake pending: it was cancelled, not awaited for 0.3 s more
    assert site.events.alerts == []
    idle.close()
    second.close()


async def test_garbage_is_alerted_as_not_tls(pki: Pki) -> None:
    async with tls_site(pki) as site:
        with socket.create_connection(("127.0.0.1", site.port)) as raw:
            raw.sendall(b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64)
            await asyncio.sleep(0.2)
        with socket.create_connection(
            ("127.0.0.1", site.port), source_address=("127.0.0.9", 0)
        ) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\n\r\n")
            await asyncio.sleep(0.2)
    assert site.failed("not-tls") + site.failed("handshake-failed") == 2
    assert [(k, p) for k, _, _, p in site.events.alerts] == [
        ("tls-failure", "127.0.0.1"),
        ("tls-failure", "127.0.0.9"),
    ]


def _ssl_error(reason: str) -> ssl.SSLError:
    error = ssl.SSLError(1, reason)
    error.reason = reason
    return error


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (ssl.SSLCertVerificationError(1, "x"), "certificate-verify-failed"),
        (_ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE"), "no-client-certificate"),
        (_ssl_error("HTTP_REQUEST"), "not-tls"),
        (_ssl_error("WRONG_VERSION_NUMBER"), "not-tls"),
        (_ssl_error("UNSUPPORTED_PROTOCOL"), "protocol-version"),
        (_ssl_error("TLSV1_ALERT_UNKNOWN_CA"), "peer-alert"),
        (_ssl_error("SSLV3_ALERT_BAD_CERTIFICATE"), "peer-alert"),
        (_ssl_error("SOMETHING_NEW"), "handshake-failed"),
        (ssl.SSLEOFError(8, "eof"), "closed"),
        (ConnectionResetError(), "closed"),
        (ConnectionAbortedError("slow"), "timeout"),
        (TimeoutError(), "timeout"),
    ],
)
def test_failure_reasons(exc: BaseException, reason: str) -> None:
    assert failure_reason(exc) == reason
    assert reason in REASONS


def test_alerts_are_limited_per_peer_and_overall() -> None:
    now = [0.0]
    events, registry = Recorded(), CollectorRegistry()
    tls = ServerTls(
        cert_file="c", key_file="k", handshake_alert_interval_s=60, handshake_alerts_per_interval=5
    )
    failures = HandshakeFailures(events, registry, tls, clock=lambda: now[0])
    refused = _ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE")
    for _ in range(10):
        failures.failed(("192.0.2.1", 1000), refused)
    assert len(events.alerts) == 1
    kind, target, detail, performer = events.alerts[0]
    assert (kind, target, performer) == ("tls-failure", "192.0.2.1:1000", "192.0.2.1")
    assert "no-client-certificate" in detail
    now[0] += 61
    failures.failed(("192.0.2.1", 1001), refused)
    assert len(events.alerts) == 2
    for host in range(20):  # many addresses at once: the overall cap holds
        failures.failed((f"2001:db8::{host}", 443, 0, 0), refused)
    assert len(events.alerts) == 2 + 4  # 5 per interval in all, one of which was used
    assert events.alerts[-1][1].startswith("[2001:db8::")
    assert registry.get_sample_value("mado_gateway_inbound_tls_alerts_suppressed_total") == 9 + 16
    assert (
        registry.get_sample_value(
            "mado_gateway_inbound_tls_failures_total", {"reason": "no-client-certificate"}
        )
        == 31
    )
    failures.failed(("192.0.2.7", 1), ConnectionResetError())  # not TLS-level: never alerted
    assert len(events.alerts) == 6


def test_handshake_settings_name_their_field_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_server_settings(
            {
                "server": {
                    "tls": {
                        "cert_file": "/nonexistent.pem",
                        "key_file": "/nonexistent.key",
                        "handshake_timeout_s": 0,
                        "handshake_alert_interval_s": -1,
                        "handshake_alerts_per_interval": 0,
                    }
                }
            }
        )
    text = "\n".join(str(p) for p in caught.value.problems)
    for path in (
        "server.tls.handshake_timeout_s",
        "server.tls.handshake_alert_interval_s",
        "server.tls.handshake_alerts_per_interval",
    ):
        assert path in text, text
    assert parse_server_settings({}).tls is None
