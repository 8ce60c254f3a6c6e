"""The exchange record: one leg per upstream conversation, each outcome typed, the sinks fed
from it one way (design.md §4), over real loopback sockets."""

from __future__ import annotations

from typing import Any

import aiohttp
from yarl import URL

from gateway.exchange import (
    Attempt,
    Exchange,
    Failure,
    Hop,
    Outcome,
    RefusalKind,
    StreamEnd,
)
from routing.urlpolicy import Rule
from tests.security.harness import STUDY, Listener, Scripted, fetch, gateway


class Kept:
    """An exchange sink that keeps what it is handed."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def observe(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def one(self) -> Exchange:
        relayed = [e for e in self.exchanges if e.legs]
        assert len(relayed) == 1
        return relayed[0]


async def test_a_failover_is_one_leg_with_each_attempt_typed() -> None:
    kept = Kept()
    async with Scripted() as up, Listener("127.0.0.2") as evil:
        refused_base, good_base = f"http://{evil.authority}/ok/", up.url + "ok/"
        upstreams = {"ok": {"base_urls": [refused_base, good_base]}}
        async with gateway(upstreams, extra_sinks=[kept]) as gw:
            status, _, body = await fetch(gw.url("ok"))
    assert (status, body) == (200, up.body)
    exchange = kept.one()
    (leg,) = exchange.legs
    assert leg.upstream == "ok"
    assert leg.attempts == [
        Attempt(base_url=refused_base, failure=Failure.ADDRESS),
        Attempt(base_url=good_base, status=200),
    ]
    (refusal,) = leg.refusals
    assert refusal.kind is RefusalKind.ADDRESS
    assert refusal.target == f"{refused_base}studies/{STUDY}"
    assert refusal.address_class is not None
    assert leg.url == f"{good_base}studies/{STUDY}"
    assert (leg.status, leg.end, leg.hops) == (200, StreamEnd.COMPLETE, [])
    assert leg.bytes == exchange.bytes_sent == len(up.body)
    assert leg.first_byte_s is not None and leg.end_s is not None
    assert 0 <= leg.started_s <= leg.first_byte_s <= leg.end_s
    assert exchange.outcome is Outcome.COMPLETE


async def test_redirects_are_hops_on_the_leg_and_a_refused_one_a_refusal() -> None:
    kept = Kept()
    async with Scripted() as up, Scripted() as other, Listener("127.0.0.2") as evil:
        moved = f"{other.url}ok/moved/studies/{STUDY}"
        stolen = f"http://{evil.authority}/steal"
        up.script["go"] = (302, moved)
        up.script["bad"] = (307, stolen)
        redirects = {"allow_http": True}
        bad_base = up.url + "r/bad/"
        upstreams: dict[str, dict[str, Any]] = {
            "go": {"base_urls": [up.url + "r/go/"], "redirects": redirects},
            "bad": {"base_urls": [bad_base], "redirects": redirects},
            "other": {"base_urls": [other.url + "ok/"]},
        }
        async with gateway(upstreams, extra_sinks=[kept]) as gw:
            assert (await fetch(gw.url("go")))[0] == 200
            followed = kept.one()
            kept.exchanges.clear()
            assert (await fetch(gw.url("bad")))[0] == 502
            refused = kept.one()
    (leg,) = followed.legs
    assert leg.hops == [Hop(status=302, target=moved)]
    assert (leg.url, leg.refusals, leg.end) == (moved, [], StreamEnd.COMPLETE)
    (leg,) = refused.legs
    assert leg.hops == [Hop(status=307, target=stolen, refused=Rule.ORIGIN)]
    assert leg.attempts == [Attempt(base_url=bad_base, status=307)]
    ((kind, target, address_class),) = [
        (r.kind, r.target, r.address_class) for r in leg.refusals
    ]
    assert (kind, target, address_class) == (RefusalKind.REDIRECT, stolen, None)
    assert not leg.answered and leg.end is None
    assert (refused.outcome, refused.error) == (Outcome.FAILED, "redirect")


async def test_a_refusal_is_alerted_before_the_first_byte_of_the_answer_that_follows() -> None:
    """A security alert must not wait for the end of a long stream (nor be lost with it)."""
    async with Scripted() as up, Listener("127.0.0.2") as evil:
        upstreams = {"ok": {"base_urls": [f"http://{evil.authority}/ok/", up.url + "slow/"]}}
        async with (
            gateway(upstreams) as gw,
            aiohttp.ClientSession() as session,
            session.get(URL(gw.url("ok"), encoded=True)) as answer,
        ):
            assert answer.status == 200
            first = await answer.content.readexactly(len(up.body) // 2)
            assert gw.events.kinds() == ["address-refused"]  # the stream is still open
            up.gate.set()
            rest = await answer.content.read()
    assert first + rest == up.body
    assert gw.events.kinds() == ["address-refused"]  # once
