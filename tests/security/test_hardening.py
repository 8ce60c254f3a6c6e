"""Inbound hardening: CORS for viewers, rate limit, stream cap, limits (units and end to end)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from gateway.edge.hardening import ClientLimiter, TokenBuckets
from gateway.errors import RateLimited, TooManyStreams
from gateway.settings import RateLimit, parse_server_settings
from routing.errors import ConfigError
from tests.security.harness import Scripted, fetch, gateway

VIEWER = "https://viewer.example.org"
CORS = {"cors": {"allowed_origins": [VIEWER], "max_age_s": 300}}


async def test_cors_preflight_allows_authorization_for_a_listed_origin() -> None:
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, server=CORS) as gw,
    ):
        async with (
            aiohttp.ClientSession() as session,
            session.options(
                gw.url("ok"),
                headers={
                    "Origin": VIEWER,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "authorization, accept",
                },
            ) as answer,
        ):
            assert answer.status == 204
            assert answer.headers["Access-Control-Allow-Origin"] == VIEWER
            assert "Authorization" in answer.headers["Access-Control-Allow-Headers"]
            assert answer.headers["Access-Control-Allow-Methods"] == "GET"
            assert answer.headers["Access-Control-Max-Age"] == "300"
        assert up.seen == []
        status, headers, body = await fetch(gw.url("ok"), Origin=VIEWER)
        assert (status, body) == (200, up.body)
        assert headers["Access-Control-Allow-Origin"] == VIEWER
        exposed = headers["Access-Control-Expose-Headers"]
        for name in ("Content-Type", "Warning", "X-Request-ID", "Content-Range", "Retry-After"):
            assert name in exposed
        # a problem answer is readable by the viewer too
        status, headers, _ = await fetch(gw.url("ok", "studies/1.02"), Origin=VIEWER)
        assert status == 400 and headers["Access-Control-Allow-Origin"] == VIEWER
        # another page's origin gets no CORS header
        _, headers, _ = await fetch(gw.url("ok"), Origin="https://evil.example")
        assert "Access-Control-Allow-Origin" not in headers


async def test_rate_limit_answers_429_with_retry_after_then_serves_again() -> None:
    server = {"rate_limit": {"requests_per_s": 2, "burst": 2}}
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, server=server) as gw,
    ):
        assert (await fetch(gw.url("ok")))[0] == 200
        assert (await fetch(gw.url("ok")))[0] == 200
        status, headers, body = await fetch(gw.url("ok"))
        assert status == 429
        assert json.loads(body)["type"] == "urn:mado-gateway:problem:rate-limited"
        retry = int(headers["Retry-After"])
        assert retry >= 1
        assert gw.metric("mado_gateway_inbound_refusals_total", reason="rate-limited") == 1
        assert (await fetch(str(gw.server.make_url("/livez"))))[0] == 200  # not limited
        await asyncio.sleep(retry)
        assert (await fetch(gw.url("ok")))[0] == 200
    assert len(up.seen) == 3


async def test_concurrent_streams_per_client_are_capped() -> None:
    server = {"rate_limit": {"max_streams": 1}}
    upstreams: dict[str, dict[str, list[str]]] = {
        "slow": {"base_urls": []},
        "ok": {"base_urls": []},
    }
    async with Scripted() as up:
        upstreams["slow"]["base_urls"] = [up.url + "slow/"]
        upstreams["ok"]["base_urls"] = [up.url + "ok/"]
        async with gateway(upstreams, server=server) as gw, aiohttp.ClientSession() as session:
            async with session.get(gw.url("slow")) as first:
                assert first.status == 200
                await first.content.readexactly(10)
                status, headers, body = await fetch(gw.url("ok"))
                assert status == 429
                assert json.loads(body)["type"] == "urn:mado-gateway:problem:too-many-streams"
                assert headers["Retry-After"] == "1"
                up.gate.set()
                assert await first.read() == up.body[10:]
            assert (await fetch(gw.url("ok")))[0] == 200


def test_token_bucket_refills_at_its_rate_and_forgets_old_clients() -> None:
    now = [0.0]
    buckets = TokenBuckets(
        RateLimit(requests_per_s=10, burst=2, max_clients=100), clock=lambda: now[0]
    )
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(0.1)
    now[0] += 0.1
    assert buckets.take("a") == 0
    for index in range(150):
        buckets.take(f"client-{index}")
    assert len(buckets._buckets) == 100


def test_client_limiter_releases_its_slots() -> None:
    limiter = ClientLimiter.create(RateLimit(requests_per_s=1, burst=1, max_streams=2))
    limiter.admit("a")
    with pytest.raises(RateLimited):
        limiter.admit("a")
    with limiter.stream("a"), limiter.stream("a"):
        assert limiter.streams == {"a": 2}
        third = limiter.stream("a")
        with pytest.raises(TooManyStreams):
            third.__enter__()
    assert limiter.streams == {}


def test_server_settings_name_their_field_paths() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_server_settings(
            {
                "server": {
                    "cors": {"allowed_origins": ["not a url"]},
                    "rate_limit": {"burst": 0, "requests_per_s": -1},
                    "limits": {"max_url_bytes": 10, "max_body_bytes": -1, "bogus": 1},
                    "tls": {"cert_file": "/nonexistent.pem"},
                }
            }
        )
    text = "\n".join(str(p) for p in caught.value.problems)
    for path in (
        "server.cors.allowed_origins[0]",
        "server.rate_limit.burst",
        "server.rate_limit.requests_per_s",
        "server.limits.max_url_bytes",
        "server.limits.max_body_bytes",
        "server.limits.bogus: unknown field",
        "server.tls.cert_file: file '/nonexistent.pem' does not exist",
        "server.tls.key_file: is required",
    ):
        assert path in text
