"""A live group answer spilled to the spool (:func:`gateway.protocols.xca.client.spill`): the
upstream is drained while nobody reads, parts come back byte-exact and in order, failures
keep their place, and close() releases the connection, the task and the files.

The peer is canned only to produce what a real one cannot on demand (see
:mod:`tests.unit.xca_client_harness`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from gateway.exchange import StreamEnd
from gateway.protocols.xca.client import spill
from gateway.protocols.xca.plan import Role
from gateway.protocols.xca.results import GroupAnswer, PartFailed
from tests.functional.soapclient import (
    RAD75_RESPONSE,
    SUCCESS,
    Part,
    Returned,
    mtom_package,
    rad_response,
)
from tests.unit.xca_client_harness import (
    REMOTE,
    REPOSITORY,
    canned_peer,
    collect,
    cut_after,
    documents,
    gateway_side,
    stall_after,
    streamed,
)

UIDS = [f"1.2.826.0.1.3680043.10.99.1.1.{n}" for n in (1, 2, 3)]
HCID = f"urn:oid:{REMOTE}"


def big_answer(
    sizes: tuple[int, ...], *, parts_sent: int | None = None
) -> tuple[str, bytes, dict[str, bytes]]:
    """An MTOM answer returning one document per size (distinct bytes each, CR LF at the
    end); ``parts_sent`` leaves the later parts out of the package."""
    content = {
        uid: (bytes([65 + index]) * (size - 2)) + b"\r\n"
        for index, (uid, size) in enumerate(zip(UIDS, sizes, strict=False))
    }
    returned = [
        Returned(
            home_community_id=HCID,
            repository_id=REPOSITORY,
            document_uid=uid,
            content=data,
            content_id=f"p{index}@peer",
        )
        for index, (uid, data) in enumerate(content.items())
    ]
    envelope = rad_response(status=SUCCESS, documents=returned, action=RAD75_RESPONSE)
    parts = [Part(content_id=r.content_id or "", content=r.content) for r in returned]
    content_type, body = mtom_package(envelope, action=None, parts=parts[:parts_sent])
    return content_type, body, content


async def read_in_order(answer: GroupAnswer) -> tuple[list[str], dict[str, bytes], str | None]:
    """Document UIDs in part order, their bytes, and the PartFailed reason that ended it."""
    by_cid = {d.content_id: d.document_uid for d in answer.documents}
    order: list[str] = []
    got: dict[str, bytes] = {}
    try:
        async for part in answer.parts:
            uid = by_cid[part.content_id]
            order.append(uid)
            got[uid] = b"".join([chunk async for chunk in part.chunks])
    except PartFailed as failed:
        return order, got, failed.reason
    return order, got, None


async def test_the_upstream_is_drained_while_nobody_reads(tmp_path: Path) -> None:
    sizes = (8_000_000, 6_000_000, 10)
    content_type, body, content = big_answer(sizes)
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path, read_idle_s=0.3) as side:
        peer.handler = streamed(peer, content_type, body, block=256 * 1024)
        # Control: a live answer nobody reads holds the upstream back.
        live = await side.call(documents(UIDS, hcid=HCID), role=Role.INITIATING)
        with pytest.raises(TimeoutError):
            await peer.wait_ended(timeout_s=0.5)
        await live.close()
        assert await peer.wait_ended() == "gone"
        peer.ended.clear()

        spilled = spill(
            await side.call(documents(UIDS, hcid=HCID), role=Role.INITIATING), side.budget
        )
        assert await peer.wait_ended() == "sent"  # all of it, with nobody reading
        await asyncio.sleep(0.5)  # longer than read_idle_s: nothing is waiting on the upstream
        order, got, failure = await read_in_order(spilled)
        assert side.budget.used_bytes == 0  # each file is discarded once read
        await spilled.close()
        assert side.exchange.legs[-1].end is StreamEnd.COMPLETE
    assert failure is None
    assert order == UIDS
    assert got == content
    assert spilled.documents == live.documents and spilled.errors == ()


async def test_spool_full_fails_that_part_when_it_is_read(tmp_path: Path) -> None:
    sizes = (100_000, 3_000_000, 100_000)
    content_type, body, content = big_answer(sizes)
    async with (
        canned_peer() as (peer, url),
        gateway_side([url], tmp_path, spool_bytes=1_000_000) as side,
    ):
        peer.handler = streamed(peer, content_type, body)
        spilled = spill(
            await side.call(documents(UIDS, hcid=HCID), role=Role.INITIATING), side.budget
        )
        assert await peer.wait_ended() == "gone"  # released once the spill gave up
        order, got, failure = await read_in_order(spilled)
        await spilled.close()
        assert side.budget.used_bytes == 0
    assert (order, failure) == (UIDS[:2], "spool-full")
    assert got == {UIDS[0]: content[UIDS[0]]}


@pytest.mark.parametrize(("fault", "reason"), [("cut", "truncated"), ("unresolved", "unresolved")])
async def test_upstream_failures_keep_their_place(fault: str, reason: str, tmp_path: Path) -> None:
    sizes = (50_000, 50_000, 50_000)
    content_type, body, content = big_answer(sizes, parts_sent=2 if fault == "unresolved" else None)
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = (
            cut_after(content_type, body, body.index(content[UIDS[1]][:100]) + 500)
            if fault == "cut"
            else streamed(peer, content_type, body)
        )
        spilled = spill(
            await side.call(documents(UIDS, hcid=HCID), role=Role.INITIATING), side.budget
        )
        order, got, failure = await read_in_order(spilled)
        await spilled.close()
        assert side.budget.used_bytes == 0
    assert failure == reason
    assert got[UIDS[0]] == content[UIDS[0]]
    if fault == "unresolved":
        assert order == UIDS[:2] and got[UIDS[1]] == content[UIDS[1]]
    else:
        assert order == UIDS[:2] and UIDS[1] not in got


async def test_close_cancels_the_spill_and_releases_everything(tmp_path: Path) -> None:
    content_type, body, content = big_answer((200_000, 200_000, 10))
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path, read_idle_s=30) as side:
        peer.handler = stall_after(
            peer, content_type, body, body.index(content[UIDS[1]][:100]) + 500
        )
        spilled = spill(
            await side.call(documents(UIDS, hcid=HCID), role=Role.INITIATING), side.budget
        )
        first = await anext(spilled.parts)  # served while the second part is stalled
        assert b"".join([chunk async for chunk in first.chunks]) == content[UIDS[0]]
        await spilled.close()
        assert await peer.wait_ended() == "gone"
        assert side.budget.used_bytes == 0
        assert side.exchange.legs[-1].end is StreamEnd.CLIENT
        await spilled.close()  # idempotent


async def test_a_spilled_answer_that_failed_before_its_envelope_has_no_parts(
    tmp_path: Path,
) -> None:
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = cut_after("multipart/related; boundary=x", b"--x\r\n", 5)
        spilled = spill(
            await side.call(documents(UIDS, hcid=HCID), role=Role.INITIATING), side.budget
        )
        assert await collect(spilled) == {}
        await spilled.close()
    assert len(spilled.errors) == len(UIDS)
