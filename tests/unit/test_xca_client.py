"""One group sent over SOAP (:func:`gateway.protocols.xca.client.call`) to a canned peer on a
loopback socket: the request it writes, the answers it reads, and every failure turned into
errors per document (before the envelope) or :class:`PartFailed` (after it).

The peer is canned only to produce what a real one cannot on demand (see
:mod:`tests.unit.xca_client_harness`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.exchange import Leg, StreamEnd
from gateway.protocols.xca.client import ACCEPT
from gateway.protocols.xca.model import ErrorCode
from gateway.protocols.xca.plan import Role
from gateway.protocols.xca.results import GroupAnswer, PartFailed
from gateway.settings import XcaSettings
from peers.net import free_port
from tests.functional.soapclient import (
    ANONYMOUS,
    ERROR,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75,
    RAD75_RESPONSE,
    SOAP12,
    SUCCESS,
    WSA,
    XDSB,
    Part,
    RegistryErrorRow,
    Returned,
    content_type_params,
    mtom_package,
    parse_answer,
    plain_content_type,
    rad_response,
)
from tests.functional.xdsi_schema import assert_valid_request
from tests.unit.xca_client_harness import (
    OWN,
    REMOTE,
    REPOSITORY,
    CannedPeer,
    Handler,
    canned_peer,
    collect,
    cut_after,
    documents,
    gateway_side,
    stall_after,
    streamed,
    whole,
)

UIDS = ["1.2.826.0.1.3680043.10.99.1.1.1", "1.2.826.0.1.3680043.10.99.1.1.2"]
CONTENT = {
    UIDS[0]: b"\r\n" + b"DICM" * 5000 + b"\r\n--not-a-boundary\r\n",  # CR/LF at both edges
    UIDS[1]: bytes(range(256)) * 300 + b"\n",
}
JPEG_LS = "1.2.840.10008.1.2.4.80"
EXPLICIT = "1.2.840.10008.1.2.1"


def remote_answer(
    *,
    hcid: str | None = f"urn:oid:{REMOTE}",
    status: str = SUCCESS,
    errors: tuple[RegistryErrorRow, ...] = (),
    uids: list[str] = UIDS,
    inline: bool = False,
    action: str = RAD75_RESPONSE,
) -> tuple[bytes, list[Part]]:
    """The envelope of a canned answer returning ``uids`` and the parts it names."""
    returned = [
        Returned(
            home_community_id=hcid,
            repository_id=REPOSITORY,
            document_uid=uid,
            content=CONTENT[uid],
            content_id=None if inline else f"doc{index}@peer test",  # a space: %-encoded in href
        )
        for index, uid in enumerate(uids)
    ]
    envelope = rad_response(status=status, documents=returned, errors=errors, action=action)
    parts = [Part(content_id=d.content_id, content=d.content) for d in returned if d.content_id]
    return envelope, parts


def package(**options: object) -> tuple[str, bytes]:
    envelope, parts = remote_answer()
    return mtom_package(envelope, action=None, parts=parts, **options)  # type: ignore[arg-type]


# -- the request -------------------------------------------------------------------------


@pytest.mark.xcai(26)
@pytest.mark.checklist(31)
async def test_rad75_request_is_mtom_root_only_with_addressing_and_the_consumers_ids(
    tmp_path: Path,
) -> None:
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(*package())
        requested = documents(UIDS, hcid=f"urn:oid:{REMOTE}")
        answer = await side.call(
            requested, role=Role.INITIATING, transfer_syntaxes=(JPEG_LS, EXPLICIT)
        )
        await collect(answer)
        await answer.close()
        headers, body = peer.received[0]
    assert headers["Accept"] == ACCEPT
    media, params = content_type_params(headers["Content-Type"])
    assert (media, params["type"], params["start-info"]) == (
        "multipart/related",
        "application/xop+xml",
        "application/soap+xml",
    )
    assert params["action"] == RAD75
    sent = parse_answer(200, headers["Content-Type"], body)
    assert len(sent.parts) == 1 and sent.root_index == 0 and sent.closing_delimiter
    envelope = sent.envelope
    header = envelope.find(f"{{{SOAP12}}}Header")
    must = f"{{{SOAP12}}}mustUnderstand"
    assert header.find(f"{{{WSA}}}Action").text == RAD75
    assert header.find(f"{{{WSA}}}Action").get(must) == "true"
    assert header.find(f"{{{WSA}}}MessageID").text.startswith("urn:uuid:")
    assert header.find(f"{{{WSA}}}ReplyTo/{{{WSA}}}Address").text == ANONYMOUS
    assert header.find(f"{{{WSA}}}To").text == url
    assert_valid_request(envelope)
    requests = envelope.findall(f".//{{{XDSB}}}DocumentRequest")
    assert [r.findtext(f"{{{XDSB}}}HomeCommunityId") for r in requests] == [f"urn:oid:{REMOTE}"] * 2
    syntaxes = [e.text for e in envelope.iter("{urn:ihe:rad:xdsi-b:2009}TransferSyntaxUID")]
    assert syntaxes == [JPEG_LS, EXPLICIT]
    assert side.exchange.legs[0].transaction == "RAD-75"
    assert side.exchange.legs[0].upstream == "rig"


@pytest.mark.xcai(16, 29)
async def test_rad69_from_a_responding_gateway_carries_our_community_in_the_configured_namespace(
    tmp_path: Path,
) -> None:
    async with (
        canned_peer() as (peer, url),
        gateway_side([url], tmp_path, upstream={"document_request_namespace": "xdsi-b"}) as side,
    ):
        envelope, parts = remote_answer(hcid=None, action=RAD69_RESPONSE)
        peer.handler = whole(*mtom_package(envelope, action=None, parts=parts))
        answer = await side.call(
            documents(UIDS, hcid=None), role=Role.RESPONDING, transfer_syntaxes=(JPEG_LS, EXPLICIT)
        )
        got = await collect(answer)
        await answer.close()
        headers, body = peer.received[0]
    assert got == CONTENT
    assert content_type_params(headers["Content-Type"])[1]["action"] == RAD69
    sent = parse_answer(200, headers["Content-Type"], body).envelope
    requests = sent.findall(".//{urn:ihe:rad:xdsi-b:2009}DocumentRequest")
    assert [r.findtext(f"{{{XDSB}}}HomeCommunityId") for r in requests] == [f"urn:oid:{OWN}"] * 2
    syntaxes = [e.text for e in sent.iter("{urn:ihe:rad:xdsi-b:2009}TransferSyntaxUID")]
    assert syntaxes == [JPEG_LS, EXPLICIT]
    # an IDS need not write homeCommunityId; the RIG's answer carries its own (digest §2.9)
    assert {d.home_community_id for d in answer.documents} == {f"urn:oid:{OWN}"}
    assert side.exchange.legs[0].transaction == "RAD-69"


# -- answers read -------------------------------------------------------------------------


@pytest.mark.xcai(13, 27)
@pytest.mark.parametrize(
    "variant",
    ["root first", "root last", "no start, root first", "base64 parts"],
)
async def test_mtom_answers_are_read_byte_exact(variant: str, tmp_path: Path) -> None:
    envelope, parts = remote_answer()
    if variant == "base64 parts":
        parts = [
            Part(content_id=p.content_id, content=p.content, transfer_encoding="base64")
            for p in parts
        ]
    root_index = len(parts) if variant == "root last" else 0
    start = variant != "no start, root first"
    content_type, body = mtom_package(
        envelope, action=None, parts=parts, root_index=root_index, start=start
    )
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(content_type, body)
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        got = await collect(answer)
        await answer.close()
        leg = side.exchange.legs[0]
        assert side.budget.used_bytes == 0  # parts before the root were spooled, then freed
    assert got == CONTENT
    assert answer.errors == ()
    assert [d.document_uid for d in answer.documents] == UIDS
    assert leg.end is StreamEnd.COMPLETE and leg.bytes == len(body)


@pytest.mark.xcai(27)
async def test_a_plain_soap_answer_with_inline_documents_is_served_as_parts(
    tmp_path: Path,
) -> None:
    envelope, _ = remote_answer(inline=True)
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(plain_content_type(None), envelope)
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        assert side.budget.used_bytes == sum(map(len, CONTENT.values()))  # on disk, not in memory
        got = await collect(answer)
        await answer.close()
        assert side.budget.used_bytes == 0
    assert got == CONTENT
    assert all(d.inline is None and d.content_id for d in answer.documents)


@pytest.mark.xcai(25)
async def test_a_rig_document_response_without_home_community_id_is_an_error(
    tmp_path: Path,
) -> None:
    envelope, parts = remote_answer(hcid=None)
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(*mtom_package(envelope, action=None, parts=parts))
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        got = await collect(answer)  # the refused documents' parts are read past
        await answer.close()
    assert answer.documents == () and got == {}
    assert [e.code for e in answer.errors] == [ErrorCode.REPOSITORY] * 2
    assert all("homeCommunityId" in e.context and "rig" in e.context for e in answer.errors)


@pytest.mark.xcai(18, 20)
async def test_a_responding_gateway_relays_ids_errors_relocated_with_unknown_codes(
    tmp_path: Path,
) -> None:
    """An IDS that writes dcm4chee's codes (XDSMissingDocument, location = SOP UID)."""
    missing = RegistryErrorRow("XDSMissingDocument", "DICOM Object not found", UIDS[1], ERROR)
    envelope, parts = remote_answer(
        hcid=None, status=PARTIAL_SUCCESS, errors=(missing,), uids=UIDS[:1], action=RAD69_RESPONSE
    )
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(*mtom_package(envelope, action=None, parts=parts))
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{OWN}"), role=Role.RESPONDING)
        got = await collect(answer)
        await answer.close()
    assert got == {UIDS[0]: CONTENT[UIDS[0]]}
    (error,) = answer.errors
    assert error.code == "XDSMissingDocument"
    assert error.location == f"urn:oid:{OWN}"
    assert UIDS[1] in error.context


# -- failures before the envelope: errors per document, never an exception --------------


async def _failed_call(
    tmp_path: Path, handler_for: Callable[[CannedPeer], Handler] | None, role: Role, **side: Any
) -> tuple[GroupAnswer, Leg]:
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path, **side) as gateway:
        peer.handler = None if handler_for is None else handler_for(peer)
        hcid = f"urn:oid:{REMOTE}" if role is Role.INITIATING else f"urn:oid:{OWN}"
        answer = await gateway.call(documents(UIDS, hcid=hcid), role=role)
        assert [p async for p in answer.parts] == []
        await answer.close()
        assert gateway.budget.used_bytes == 0
        return answer, gateway.exchange.legs[0]


FAULT = (
    f'<?xml version="1.0"?><e:Envelope xmlns:e="{SOAP12}"><e:Body><e:Fault>'
    "<e:Code><e:Value>e:Receiver</e:Value></e:Code>"
    '<e:Reason><e:Text xml:lang="en">secret internals</e:Text></e:Reason>'
    "</e:Fault></e:Body></e:Envelope>"
).encode()

FAILURES = {
    "fault 500": lambda peer: whole(plain_content_type(None), FAULT, status=500),
    "fault 200": lambda peer: whole(plain_content_type(None), FAULT),
    "fault in mtom": lambda peer: whole(*mtom_package(FAULT, action=None)),
    "not xml": lambda peer: whole(plain_content_type(None), b"<<<"),
    "html": lambda peer: whole("text/html", b"<html></html>"),
    "cut before the root ends": lambda peer: cut_after(*package(), at=200),
    "stall before the root": lambda peer: stall_after(peer, *package(), at=100),
    "no closing delimiter, no root": lambda peer: whole(
        *mtom_package(b"", action=None, close=False, root_index=0)
    ),
}


@pytest.mark.xcai(23)
@pytest.mark.checklist(38)
@pytest.mark.parametrize("failure", list(FAILURES))
async def test_an_unusable_rig_answer_is_unavailable_community_for_each_document(
    failure: str, tmp_path: Path
) -> None:
    answer, leg = await _failed_call(tmp_path, FAILURES[failure], Role.INITIATING, read_idle_s=0.3)
    assert answer.documents == ()
    errors = answer.errors
    assert [e.code for e in errors] == [ErrorCode.UNAVAILABLE_COMMUNITY] * 2
    for error, uid in zip(errors, UIDS, strict=True):
        assert uid in error.context and "rig" in error.context  # names the upstream (#67)
        assert "secret" not in error.context  # never the peer's words
        assert error.location == f"urn:oid:{OWN}"
    assert leg.transaction == "RAD-75"


async def test_an_unreachable_ids_is_repository_error_for_each_document(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}/xcai"
    async with gateway_side([closed], tmp_path) as side:
        answer = await side.call(documents(UIDS, hcid=None), role=Role.RESPONDING)
        await answer.close()
    assert [e.code for e in answer.errors] == [ErrorCode.REPOSITORY] * 2
    assert all("ids" in e.context and "reached" in e.context for e in answer.errors)
    assert side.exchange.legs[0].url == closed


async def test_a_failing_base_url_fails_over_to_the_next(tmp_path: Path) -> None:
    async with canned_peer() as (bad, bad_url), canned_peer() as (good, good_url):
        bad.handler = whole("text/plain", b"busy", status=503)
        good.handler = whole(*package())
        async with gateway_side([bad_url, good_url], tmp_path) as side:
            answer = await side.call(
                documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING
            )
            got = await collect(answer)
            await answer.close()
    assert got == CONTENT
    assert [a.status for a in side.exchange.legs[0].attempts] == [503, 200]
    # one envelope, built before the first attempt: both got the same bytes
    assert bad.received[0][1] == good.received[0][1]


async def test_parts_before_the_root_past_the_spool_are_out_of_resources(tmp_path: Path) -> None:
    envelope, parts = remote_answer()
    content_type, body = mtom_package(envelope, action=None, parts=parts, root_index=len(parts))
    first = len(CONTENT[UIDS[0]])
    async with (
        canned_peer() as (peer, url),
        gateway_side([url], tmp_path, spool_bytes=first + 10) as side,
    ):
        peer.handler = whole(content_type, body)
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        got = await collect(answer)
        await answer.close()
        assert side.budget.used_bytes == 0
    assert got == {UIDS[0]: CONTENT[UIDS[0]]}
    assert [e.code for e in answer.errors] == [ErrorCode.OUT_OF_RESOURCES]
    assert UIDS[1] in answer.errors[0].context


async def test_an_envelope_over_its_cap_is_unreadable(tmp_path: Path) -> None:
    envelope, parts = remote_answer()
    padded = envelope.replace(b"<s:Header>", b"<s:Header><!--" + b"x" * 5000 + b"-->", 1)
    settings = XcaSettings(max_envelope_bytes=4096, max_inline_bytes=4096)
    async with (
        canned_peer() as (peer, url),
        gateway_side([url], tmp_path, settings=settings) as side,
    ):
        peer.handler = whole(*mtom_package(padded, action=None, parts=parts))
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        await answer.close()
    assert [e.code for e in answer.errors] == [ErrorCode.UNAVAILABLE_COMMUNITY] * 2


# -- failures after the envelope: PartFailed ---------------------------------------------


async def _read_until_failure(answer: GroupAnswer) -> tuple[dict[str, bytes], str]:
    got: dict[str, bytes] = {}
    by_cid = {d.content_id: d.document_uid for d in answer.documents}

    async def read() -> None:
        async for part in answer.parts:
            data = bytearray()
            async for chunk in part.chunks:
                data += chunk
            got[by_cid[part.content_id]] = bytes(data)

    with pytest.raises(PartFailed) as failed:
        await read()
    return got, failed.value.reason


@pytest.mark.xcai(28)
@pytest.mark.parametrize(
    ("fault", "reason", "end"),
    [
        ("no closing delimiter", "truncated", StreamEnd.TRUNCATED),
        ("cid never sent", "unresolved", StreamEnd.TRUNCATED),
        ("cut mid-part", "truncated", StreamEnd.TRUNCATED),
        ("stall mid-part", "stalled", StreamEnd.STALLED),
    ],
)
async def test_a_broken_stream_after_the_envelope_fails_the_part(
    fault: str, reason: str, end: StreamEnd, tmp_path: Path
) -> None:
    envelope, parts = remote_answer()
    if fault == "cid never sent":
        parts = parts[:1]
    content_type, body = mtom_package(
        envelope, action=None, parts=parts, close=fault != "no closing delimiter"
    )
    middle = body.index(CONTENT[UIDS[0]][-64:]) + 1000  # inside the second part
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path, read_idle_s=0.3) as side:
        peer.handler = {
            "cut mid-part": cut_after(content_type, body, middle),
            "stall mid-part": stall_after(peer, content_type, body, middle),
        }.get(fault, whole(content_type, body))
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        assert answer.errors == ()  # the envelope promised both documents
        got, why = await _read_until_failure(answer)
        await answer.close()
    assert why == reason
    assert got.get(UIDS[0]) == CONTENT[UIDS[0]]  # the first part came whole
    assert side.exchange.legs[0].end is end


@pytest.mark.xcai(28)
@pytest.mark.parametrize("closed", [True, False])
async def test_the_end_is_checked_with_the_last_wanted_part(closed: bool, tmp_path: Path) -> None:
    """A writer stops asking for parts once it has them all: the rest of the body (here a
    part nobody references) is read and its end checked inside the last part's chunks."""
    envelope, parts = remote_answer()
    trailing = [*parts, Part(content_id="nobody@peer", content=b"x" * 70_000)]
    content_type, body = mtom_package(envelope, action=None, parts=trailing, close=closed)
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(content_type, body)
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        wanted = {d.content_id for d in answer.documents}
        got, reason = {}, None
        try:
            async for part in answer.parts:
                got[part.content_id] = b"".join([chunk async for chunk in part.chunks])
                if set(got) == wanted:
                    break  # as the writer does
        except PartFailed as failed:
            reason = failed.reason
        leg = side.exchange.legs[0]
        end_before_close = leg.end
        await answer.close()
    assert end_before_close is (StreamEnd.COMPLETE if closed else StreamEnd.TRUNCATED)
    assert reason == (None if closed else "truncated")
    assert len(got) == (2 if closed else 1)


@pytest.mark.xcai(28)
async def test_parts_all_before_the_root_still_need_a_complete_package(tmp_path: Path) -> None:
    envelope, parts = remote_answer()
    trailing = [*parts, Part(content_id="nobody@peer", content=b"x" * 1000)]
    content_type, body = mtom_package(
        envelope, action=None, parts=trailing, root_index=len(parts), close=False
    )
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = whole(content_type, body)
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        assert len(answer.documents) == 2
        with pytest.raises(PartFailed, match="truncated"):
            await anext(answer.parts)
        await answer.close()
        assert side.budget.used_bytes == 0
    assert side.exchange.legs[0].end is StreamEnd.TRUNCATED


async def test_close_before_the_end_releases_the_upstream(tmp_path: Path) -> None:
    big = {UIDS[0]: b"a" * 3_000_000, UIDS[1]: b"b" * 3_000_000}
    returned = [
        Returned(
            home_community_id=f"urn:oid:{REMOTE}",
            repository_id=REPOSITORY,
            document_uid=uid,
            content=data,
            content_id=f"c{index}@peer",
        )
        for index, (uid, data) in enumerate(big.items())
    ]
    envelope = rad_response(status=SUCCESS, documents=returned, action=RAD75_RESPONSE)
    content_type, body = mtom_package(
        envelope,
        action=None,
        parts=[Part(content_id=r.content_id or "", content=r.content) for r in returned],
    )
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path) as side:
        peer.handler = streamed(peer, content_type, body)
        answer = await side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        part = await anext(answer.parts)
        await anext(part.chunks)
        await answer.close()
        assert await peer.wait_ended() == "gone"
        assert side.exchange.legs[0].end is StreamEnd.CLIENT
        await answer.close()  # idempotent


async def test_cancelling_the_call_releases_the_upstream_and_the_spool(tmp_path: Path) -> None:
    envelope, parts = remote_answer()
    content_type, body = mtom_package(envelope, action=None, parts=parts, root_index=len(parts))
    stall_at = len(body) - len(envelope) // 2  # the parts are in, the root is not
    async with canned_peer() as (peer, url), gateway_side([url], tmp_path, read_idle_s=30) as side:
        peer.handler = stall_after(peer, content_type, body, stall_at)
        calling = asyncio.ensure_future(
            side.call(documents(UIDS, hcid=f"urn:oid:{REMOTE}"), role=Role.INITIATING)
        )
        async with asyncio.timeout(5):
            # the spool has no event to wait on: poll it until the early parts are in
            while side.budget.used_bytes < sum(map(len, CONTENT.values())):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        calling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await calling
        assert await peer.wait_ended() == "gone"
        assert side.budget.used_bytes == 0
        assert side.exchange.legs[0].end is StreamEnd.CLIENT
