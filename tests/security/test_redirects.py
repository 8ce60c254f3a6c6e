"""Redirects followed under policy and outbound address checks, end to end over loopback."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from gateway.sinks.security import LogSecurityEvents
from peers.faults import multipart_body
from tests.security.harness import STUDY, Listener, Scripted, fetch, gateway


def upstreams(up: Scripted, other: Scripted, **redir: Any) -> dict[str, dict[str, Any]]:
    return {
        "ok": {"base_urls": [up.url + "ok/"]},
        "redir": {
            "base_urls": [up.url + "r/go/"],
            "redirects": {"allow_http": True, **redir},
            "forward_authorization": True,
        },
        "other": {"base_urls": [other.url + "ok/"]},
    }


@pytest.mark.checklist(28)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_a_registered_upstream_is_followed_without_credentials(
    status: int,
) -> None:
    other_body = multipart_body([b"another source" * 1000] * 4)
    async with Scripted() as up, Scripted(body=other_body) as other:
        up.script["go"] = (status, f"{other.url}ok/moved/studies/{STUDY}")
        async with gateway(upstreams(up, other)) as gw:
            answer, _, body = await fetch(
                gw.url("redir"), Authorization="Bearer secret", Cookie="session=1"
            )
            assert (answer, body) == (200, other_body)  # byte-identical
            followed = gw.metric(
                "mado_gateway_redirects_total", upstream="redir", outcome="followed"
            )
            assert followed == 1
            assert gw.events.alerts == []
    first, second = up.seen[0], other.seen[0]
    assert first.headers["authorization"] == "Bearer secret"  # forward_authorization: true
    assert "cookie" not in first.headers  # cookies never leave the community
    assert second.path == f"/ok/moved/studies/{STUDY}"
    for name in ("authorization", "cookie", "proxy-authorization"):
        assert name not in second.headers  # the origin changed


async def test_same_origin_redirect_keeps_the_authorization_it_was_allowed() -> None:
    async with Scripted() as up, Scripted() as other:
        up.script["go"] = (307, f"/ok/studies/{STUDY}")
        async with gateway(upstreams(up, other)) as gw:
            answer, _, body = await fetch(gw.url("redir"), Authorization="Bearer secret")
    assert (answer, body) == (200, up.body)
    assert [s.headers.get("authorization") for s in up.seen] == ["Bearer secret"] * 2


async def test_authorization_is_not_forwarded_by_default() -> None:
    async with Scripted() as up, Scripted() as other, gateway(upstreams(up, other)) as gw:
        assert (await fetch(gw.url("ok"), Authorization="Bearer secret"))[0] == 200
    assert "authorization" not in up.seen[0].headers


@pytest.mark.checklist(27)
async def test_redirect_to_an_unregistered_host_is_a_502_a_metric_and_a_security_event() -> None:
    async with Scripted() as up, Scripted() as other, Listener("127.0.0.2") as evil:
        up.script["go"] = (302, f"http://{evil.authority}/steal")
        async with gateway(upstreams(up, other)) as gw:
            answer, headers, body = await fetch(gw.url("redir"), Authorization="Bearer secret")
            problem = json.loads(body)
            assert answer == 502
            assert problem["type"] == "urn:mado-gateway:problem:redirect-refused"
            assert "rule: origin" in problem["detail"]
            assert "Location" not in headers
            assert (
                gw.metric("mado_gateway_redirects_total", upstream="redir", outcome="origin") == 1
            )
            assert gw.metric("mado_gateway_security_events_total", kind="redirect-refused") == 1
            kind, target, detail = gw.events.alerts[0]
            assert (kind, target) == ("redirect-refused", f"http://{evil.authority}/steal")
            assert "origin" in detail
        assert evil.connections == 0


async def test_redirects_are_off_with_max_hops_zero() -> None:
    async with Scripted() as up, Scripted() as other:
        up.script["go"] = (302, f"{other.url}ok/x")
        async with gateway(upstreams(up, other, max_hops=0)) as gw:
            answer, _, body = await fetch(gw.url("redir"))
    assert answer == 502 and b"rule: hop-limit" in body
    assert other.seen == []


@pytest.mark.checklist(29)
async def test_the_default_address_policy_refuses_loopback() -> None:
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, address_policy={}) as gw,
    ):
        answer, _, body = await fetch(gw.url("ok"))
        assert answer == 502
        assert json.loads(body)["type"] == "urn:mado-gateway:problem:address-refused"
        errors = gw.metric("mado_gateway_upstream_errors_total", upstream="ok", reason="address")
        assert errors == 1
        assert gw.events.kinds() == ["address-refused"]
    assert up.seen == []


async def test_a_refused_base_url_fails_over_to_the_next() -> None:
    async with Scripted() as up, Listener("127.0.0.2") as evil:
        base_urls = [f"http://{evil.authority}/ok/", up.url + "ok/"]
        async with gateway({"ok": {"base_urls": base_urls}}) as gw:
            answer, _, body = await fetch(gw.url("ok"))
    assert (answer, body) == (200, up.body)
    assert evil.connections == 0


def test_the_default_security_sink_logs_one_json_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="mado_gateway.security"):
        LogSecurityEvents().security_alert("redirect-refused", "http://x/", "rule: origin")
    (record,) = caplog.records
    assert record.getMessage() == "security alert"
    assert record.__dict__["kind"] == "redirect-refused"


@pytest.mark.parametrize(
    "location",
    [
        "../../../ok/studies/x",  # resolved away before a check made after resolution
        "./../../../ok/studies/x",
        "..;/..;/..;/ok/studies/x",  # Tomcat's path parameters
        "%2e%2e/%2E./.%2e/ok/studies/x",
    ],
)
async def test_a_location_climbing_out_of_the_base_path_is_refused(location: str) -> None:
    """Issue 16 item 9: the raw Location is vetted before it is resolved."""
    async with Scripted() as up, Scripted() as other:
        up.script["go"] = (302, location)
        async with gateway(upstreams(up, other)) as gw:
            answer, _, body = await fetch(gw.url("redir"))
            assert answer == 502
            assert b"rule: traversal" in body
            refused = gw.metric(
                "mado_gateway_redirects_total", upstream="redir", outcome="traversal"
            )
            assert refused == 1
            assert gw.events.kinds() == ["redirect-refused"]
    assert [s.path for s in up.seen] == [f"/r/go/studies/{STUDY}"]  # nothing was followed


# --- the gateway's own credential for an upstream (issue 16 item 5) --------------------------

TOKEN = "gw-token.Abc123~"


def authed(up: Scripted, other: Scripted, **redir: Any) -> dict[str, dict[str, Any]]:
    return {
        "pacs": {
            "base_urls": [up.url + "r/go/"],
            "redirects": {"allow_http": True, **redir},
            "auth": {"type": "bearer", "token_env": "GW_TEST_TOKEN"},
        },
        "other": {"base_urls": [other.url + "ok/"]},
    }


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GW_TEST_TOKEN", TOKEN)
    return TOKEN


async def test_the_configured_credential_goes_to_the_upstreams_own_origin_only(
    token: str,
) -> None:
    async with Scripted() as up, Scripted() as other:
        up.script["go"] = (302, f"{other.url}ok/studies/{STUDY}")
        async with gateway(authed(up, other)) as gw:
            answer, _, body = await fetch(gw.url("pacs"), Authorization="Bearer consumer")
    assert (answer, body) == (200, other.body)
    assert up.seen[0].headers["authorization"] == f"Bearer {token}"  # replaces the consumer's
    assert "authorization" not in other.seen[0].headers  # another upstream's origin


async def test_the_credential_is_not_sent_to_an_allow_listed_redirect_target(token: str) -> None:
    async with Scripted() as up, Scripted() as cdn:
        up.script["go"] = (307, f"{cdn.url}ok/studies/{STUDY}")
        upstreams = authed(up, cdn, allowed_origins=[cdn.origin])
        del upstreams["other"]
        async with gateway(upstreams) as gw:
            answer, _, _ = await fetch(gw.url("pacs"))
    assert answer == 200
    assert up.seen[0].headers["authorization"] == f"Bearer {token}"
    assert "authorization" not in cdn.seen[0].headers


async def test_a_same_origin_redirect_carries_the_credential_again(token: str) -> None:
    async with Scripted() as up, Scripted() as other:
        up.script["go"] = (308, f"/ok/studies/{STUDY}")
        async with gateway(authed(up, other)) as gw:
            assert (await fetch(gw.url("pacs")))[0] == 200
    assert [s.headers.get("authorization") for s in up.seen] == [f"Bearer {token}"] * 2


async def test_a_retrieve_url_gets_the_credential_only_at_the_upstreams_origin(
    token: str,
) -> None:
    async with Scripted() as up, Scripted() as other:
        upstreams = authed(up, other)
        upstreams["pacs"]["base_urls"] = [up.url + "ok/"]
        policy = {"allowed_origins": [other.origin], "allow_upstream_origins": True}
        async with gateway(upstreams, url_policy=policy) as gw:
            to_upstream = f"retrieveurl={up.url}ok/elsewhere/"
            assert (await fetch(gw.url("pacs", query=to_upstream)))[0] == 200
            to_other = f"retrieveurl={other.url}ok/"
            assert (await fetch(gw.url("pacs", query=to_other)))[0] == 200
    assert up.seen[0].path == f"/ok/elsewhere/studies/{STUDY}"
    assert up.seen[0].headers["authorization"] == f"Bearer {token}"
    assert "authorization" not in other.seen[0].headers
