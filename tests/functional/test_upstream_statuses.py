"""Which upstream statuses may reach a client, across two gateway processes (issue 16, class 8).

Only 2xx, 304 and the documented 4xx/5xx mapping may reach a client; any other final status
an upstream answers — below 100, 1xx (101 included), a 3xx that is not followed, 600 and
above — is a 502 problem, never the upstream's status line. The scripted upstream answers
every status from 0 to 999 to community A's responding gateway (a process); each is asked
for directly at A and through community B's initiating gateway (another process).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from peers.chain import COMMUNITY_A, RLUID, chain_configs
from peers.faults import FaultUpstream, Script
from peers.gateway import GatewayProcess
from tests.functional.received import Received, receive

SECRET = b'{"secret": "internal upstream detail"}'
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def expected_status(code: int) -> int:
    if 200 <= code < 300 or code == 304 or 400 <= code < 500 or code == 503:
        return code
    return 502


def uid(code: int) -> str:
    return f"1.2.826.0.1.3680043.10.99.{code + 1000}"


def script(code: int) -> Script:
    """The upstream's answer: a JSON body, except where the status forbids one (a 204 or 304
    that announces a body is malformed: test_faults covers it)."""
    return Script(
        status=f"{code:03d} Scripted",
        headers={
            "Content-Type": "application/json",
            "Location": "http://127.0.0.1:1/elsewhere",
            "Upgrade": "h2c",
            "Warning": f"299 upstream: status {code}",
        },
        body=b"" if code in (204, 304) else SECRET,
    )


def wrong(code: int, got: Received, via: str) -> str | None:
    """Why ``got`` is not what the client may see for an upstream ``code``; None when it is."""
    want = expected_status(code)
    if got.status != want:
        return f"{via}: upstream {code} -> client {got.status} ({got.ending}), expected {want}"
    if not got.complete:
        return f"{via}: upstream {code} -> {got.ending} answer"
    if SECRET in got.body and not 200 <= code < 300:
        return f"{via}: upstream {code}: the upstream's error body reached the client"
    if want >= 400:
        if got.content_type != "application/problem+json":
            return f"{via}: upstream {code}: {got.content_type!r}, not a problem"
        problem = orjson.loads(got.body)
        if problem["status"] != want:
            return f"{via}: upstream {code}: problem status {problem['status']}"
        if via == "A" and want == 502 and not 500 <= code < 600:
            allowed = {"upstream-status"}  # a final status that is not relayed
            if code in _REDIRECTS:
                allowed = {"redirect-refused"}
            elif 100 <= code < 200 and code != 101:
                # An interim answer (aiohttp reads past it, as it must): what follows it is
                # the answer, here a body where a head should be, or a close.
                allowed = {"upstream-protocol", "upstream-unavailable"}
            slug = problem["type"].rsplit(":", 1)[-1]
            if slug not in allowed:
                return f"{via}: upstream {code}: problem type {slug}"
    return None


async def test_only_relayable_upstream_statuses_reach_the_client(tmp_path: Path) -> None:
    codes = range(1000)
    async with FaultUpstream() as up:
        responding, initiating = chain_configs(up.base_url + "scripted/")
        for config in (responding, initiating):
            # A thousand requests from one client, and B is one client of A.
            config["server"]["rate_limit"] = {"requests_per_s": 100000, "burst": 100000}
            for upstream in config["upstreams"].values():
                upstream["timeouts"] = {"connect_s": 2, "read_idle_s": 2}
        for code in codes:
            up.scripts[uid(code)] = script(code)
        with (
            GatewayProcess(tmp_path, responding, name="responding-a") as a,
            GatewayProcess(tmp_path, initiating, name="initiating-b") as b,
        ):
            tail = f"RetrieveLocationUID/{RLUID}/studies/"
            at_a = f"{a.endpoint}homeCommunityId/{COMMUNITY_A}/{tail}"
            at_b = f"{b.endpoint}homeCommunityId/{COMMUNITY_A}/{tail}"
            gate = asyncio.Semaphore(8)

            async def check(code: int, via: str, url: str) -> str | None:
                async with gate:
                    return wrong(code, await receive(url + uid(code), deadline_s=15), via)

            problems = await asyncio.gather(
                *(check(c, "A", at_a) for c in codes), *(check(c, "B", at_b) for c in codes)
            )
    found = [p for p in problems if p is not None]
    assert not found, f"{len(found)} wrong answers, e.g.:\n" + "\n".join(found[::20])
    # Each failure is a WARNING line of A's, naming the upstream and its base URL, no UID.
    lines = [orjson.loads(line) for line in a.log().splitlines() if line.startswith("{")]
    failures = [
        line for line in lines if line["level"] == "warning" and line["logger"].endswith("forward")
    ]
    final = {c for c in codes if expected_status(c) in (502, 503) and not 100 <= c < 200}
    assert {line["upstream_status"] for line in failures} >= final | {101}
    for line in failures:
        assert (line["upstream"], line["base_url"]) == ("ids-a", up.base_url + "scripted/")
        assert uid(0).rsplit(".", 1)[0] not in orjson.dumps(line).decode()
