"""HTTP/1.0 requests: relayed answers need HTTP/1.1 framing, so they get a clear refusal.

A relayed answer is always chunked: its terminating chunk, written after the exchange is in
the audit journal, is what tells a client the answer is complete. HTTP/1.0 has no chunked
framing, so an HTTP/1.0 answer could only end by closing the connection, and a cut-off study
would look complete. Such requests get 505 problem+json before anything goes upstream.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import pytest

from tests.security.harness import Scripted, gateway


async def _raw(url: str, request_line: str, extra: str = "") -> tuple[bytes, dict[str, str], bytes]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    writer.write(f"{request_line.format(target=target)}\r\nHost: {parts.netloc}\r\n{extra}\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=10)  # HTTP/1.0: read to the close
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status_line.encode(), headers, body


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/0.9"])
async def test_an_http_1_0_retrieve_is_a_505_problem_and_nothing_goes_upstream(version: str) -> None:
    async with Scripted() as up, gateway({"ok": {"base_urls": [up.url + "ok/"]}}) as gw:
        status, headers, body = await _raw(gw.url("ok"), f"GET {{target}} {version}")
        assert status.split(b" ")[1] == b"505", status
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(body)
        assert problem["type"] == "urn:mado-gateway:problem:http-version-not-supported"
        assert "HTTP/1.1" in problem["detail"]
        assert not up.seen


async def test_an_http_1_0_manifest_post_is_a_505_and_health_still_answers() -> None:
    async with Scripted() as up, gateway({"ok": {"base_urls": [up.url + "ok/"]}}) as gw:
        status, _, _ = await _raw(
            gw.raw("/mado/retrieve"), "POST {target} HTTP/1.0", "Content-Length: 0\r\n"
        )
        assert status.split(b" ")[1] == b"505"
        status, _, _ = await _raw(gw.raw("/livez"), "GET {target} HTTP/1.0")
        assert status.split(b" ")[1] == b"200"


async def test_http_1_1_is_served() -> None:
    async with Scripted() as up, gateway({"ok": {"base_urls": [up.url + "ok/"]}}) as gw:
        status, headers, _ = await _raw(gw.url("ok"), "GET {target} HTTP/1.1", "Connection: close\r\n")
        assert status.split(b" ")[1] == b"200"
        assert headers["transfer-encoding"] == "chunked"


async def test_a_streamed_answer_carries_the_request_id_the_client_offered() -> None:
    async with Scripted() as up, gateway({"ok": {"base_urls": [up.url + "ok/"]}}) as gw:
        status, headers, _ = await _raw(
            gw.url("ok"), "GET {target} HTTP/1.1", "Connection: close\r\nX-Request-ID: viewer-42\r\n"
        )
        assert status.split(b" ")[1] == b"200"
        assert headers["x-request-id"] == "viewer-42"
        status, headers, _ = await _raw(gw.url("ok"), "GET {target} HTTP/1.1", "Connection: close\r\n")
        assert len(headers["x-request-id"]) >= 16


async def test_health_answers_get_and_head() -> None:
    async with Scripted() as up, gateway({"ok": {"base_urls": [up.url + "ok/"]}}) as gw:
        for method in ("GET", "HEAD"):
            status, _, _ = await _raw(gw.raw("/livez"), method + " {target} HTTP/1.1", "Connection: close\r\n")
            assert status.split(b" ")[1] == b"200", method
