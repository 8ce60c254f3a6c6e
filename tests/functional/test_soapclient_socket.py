"""The XCA-I test kit over a real loopback socket: :func:`send`, :func:`send_to_file` and
:func:`send_raw`, the zeep client, and the gateway configuration helpers.

The peer is a canned responder (:class:`Canned`): a fake on purpose, since what is tested
here is the client, not a gateway. It answers what each test tells it to and records what it
received.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree

from peers.gateway import (
    GatewayProcess,
    gateway_config,
    rad_upstream,
    soap_url,
    xca_server,
    xca_spool,
)
from peers.net import free_port
from tests.functional.soapclient import (
    EXPLICIT_LE,
    IHERAD,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75,
    RAD75_RESPONSE,
    SOAP12,
    WARNING,
    WSA,
    Part,
    RegistryErrorRow,
    Returned,
    content_type_params,
    mtom_package,
    parse_answer,
    plain_content_type,
    rad_request,
    rad_response,
    send,
    send_raw,
    send_to_file,
)
from tests.functional.soapfixtures import DOCS, HCID, REPOSITORY, assert_returned, canned, with_hcid
from tests.functional.xdsi_schema import (
    assert_valid_request,
)
from tests.functional.zeepclient import zeep_equivalent, zeep_retrieve

# -- over a socket -------------------------------------------------------------------------


@dataclass
class Canned:
    """A canned RAD-69/RAD-75 responder (see the module docstring): answers ``answer``
    (``(Content-Type, body)``) to every POST and records each request; with ``abort_after``
    it sends that many bytes of the answer and then drops the connection."""

    answer: tuple[str, bytes] = ("text/plain", b"")
    abort_after: int | None = None
    received: list[tuple[str | None, bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.received.append((request.headers.get("Content-Type"), await request.read()))
        content_type, body = self.answer
        if self.abort_after is None:
            return web.Response(body=body, headers={"Content-Type": content_type})
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        await response.write(body[: self.abort_after])
        assert request.transport is not None
        request.transport.abort()
        return response


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Canned, str]]:
    responder = Canned()
    app = web.Application()
    app.router.add_post("/xcai", responder.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield responder, str(server.make_url("/xcai"))
    finally:
        await server.close()


async def test_send_posts_mtom_and_reads_the_answer(
    peer: tuple[Canned, str], tmp_path: Path
) -> None:
    responder, url = peer
    contents = [b"\r\nfirst\r\n", b"second\n"]
    responder.answer = canned(contents)[:2]
    envelope = rad_request(DOCS[:2], [EXPLICIT_LE], action=RAD69, to=url)
    async with aiohttp.ClientSession() as session:
        answer = await send(session, url, envelope, action=RAD69)
        saved = await send_to_file(session, url, envelope, tmp_path / "a.bin", action=RAD69)
        await send(session, url, envelope, action=RAD69, mtom=False)
        await send_raw(session, url, b"\x00", None)
    assert_returned(answer, contents, in_memory=True)
    assert_returned(saved.read(), contents, in_memory=False)
    assert saved.size == len(responder.answer[1])

    (mtom_type, mtom_body), (plain_type, plain_body), (no_type, _) = [
        responder.received[i] for i in (0, 2, 3)
    ]
    media, params = content_type_params(mtom_type or "")
    assert media == "multipart/related"
    assert params["type"] == "application/xop+xml"
    assert params["start-info"] == "application/soap+xml"
    assert params["action"] == RAD69
    request = parse_answer(200, mtom_type or "", mtom_body)
    assert request.root_index == 0 and request.closing_delimiter
    assert request.parts[0].content == envelope
    assert plain_type == plain_content_type(RAD69) and plain_body == envelope
    assert no_type is None


async def test_an_aborted_answer_raises(peer: tuple[Canned, str]) -> None:
    responder, url = peer
    content_type, body, _ = canned([b"x" * 100_000])
    responder.answer, responder.abort_after = (content_type, body), len(body) // 2
    envelope = rad_request(DOCS[:1], [EXPLICIT_LE], action=RAD69, to=url)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientPayloadError):
            await send(session, url, envelope, action=RAD69)


@pytest.mark.parametrize(
    ("action", "response_action"), [(RAD69, RAD69_RESPONSE), (RAD75, RAD75_RESPONSE)]
)
async def test_zeep_against_a_canned_answer(
    peer: tuple[Canned, str], action: str, response_action: str
) -> None:
    """zeep reads a canned MTOM answer; it strips the CR LF a part ends with (digest §5.1),
    our reader does not. What zeep sent is plain SOAP 1.2 that validates."""
    responder, url = peer
    contents = [b"\x00DICM-like\x01", b"ends in CR LF\r\n"]
    errors = [RegistryErrorRow("XDSDocumentUniqueIdError", "1.2.9 unknown", HCID, WARNING)]
    envelope = rad_response(
        status=PARTIAL_SUCCESS,
        documents=[
            Returned(
                home_community_id=HCID,
                repository_id=REPOSITORY,
                document_uid=f"1.2.{i}",
                content=content,
                content_id=f"doc{i}@mado.test",
            )
            for i, content in enumerate(contents)
        ],
        errors=errors,
        action=response_action,
    )
    parts = [Part(content_id=f"doc{i}@mado.test", content=c) for i, c in enumerate(contents)]
    responder.answer = mtom_package(envelope, action=None, parts=parts)

    status, returned, got_errors = await asyncio.to_thread(
        zeep_retrieve, url, with_hcid(DOCS[:2]), [EXPLICIT_LE], action
    )
    assert status == PARTIAL_SUCCESS
    assert got_errors == errors
    assert [uid for uid, _ in returned] == ["1.2.0", "1.2.1"]
    assert returned[0][1] == contents[0]
    assert returned[1][1] != contents[1] and zeep_equivalent(returned[1][1], contents[1])

    sent_type, sent = responder.received[0]
    assert content_type_params(sent_type or "")[0] == "application/soap+xml"
    assert_valid_request(sent)
    header = etree.fromstring(sent).find(f"{{{SOAP12}}}Header")
    assert header.find(f"{{{WSA}}}Action").text == action
    assert header.find(f"{{{WSA}}}ReplyTo") is None

    ours = parse_answer(200, *responder.answer)
    assert [doc.content for doc in ours.documents] == contents
    assert base64.b64encode(contents[1]) != base64.b64encode(returned[1][1])


# -- gateway configuration -----------------------------------------------------------------


def test_gateway_config_writes_the_xca_sections(tmp_path: Path) -> None:
    config = gateway_config(
        home_community_id=HCID,
        port=free_port(),
        upstreams={
            "rig-a": rad_upstream("rad-75", ["http://127.0.0.1:1/xcai"]),
            "ids-a": rad_upstream(
                "rad-69",
                ["http://127.0.0.1:2/ids", "http://127.0.0.1:3/ids"],
                document_request_namespace=IHERAD,
                timeouts={"connect_s": 1},
            ),
        },
        communities={"urn:oid:1.2.3": "rig-a"},
        sources={REPOSITORY: "ids-a"},
        xca=xca_server(
            max_envelope_bytes=1 << 20,
            any_transfer_syntaxes=[EXPLICIT_LE],
            spool=xca_spool(tmp_path / "spool", max_bytes=1 << 30),
        ),
    )
    assert config["upstreams"] == {
        "rig-a": {"protocol": "rad-75", "base_urls": ["http://127.0.0.1:1/xcai"]},
        "ids-a": {
            "protocol": "rad-69",
            "base_urls": ["http://127.0.0.1:2/ids", "http://127.0.0.1:3/ids"],
            "document_request_namespace": IHERAD,
            "timeouts": {"connect_s": 1},
        },
    }
    assert config["server"]["xca"] == {
        "path": "/xcai",
        "max_envelope_bytes": 1 << 20,
        "any_transfer_syntaxes": [EXPLICIT_LE],
        "spool": {"directory": str(tmp_path / "spool"), "max_bytes": 1 << 30},
    }
    gateway = GatewayProcess(tmp_path, config)
    gateway.write_config()
    assert yaml.safe_load(gateway.config_file.read_text()) == config
    assert soap_url(gateway) == f"http://127.0.0.1:{gateway.port}/xcai"
    assert "xca" not in gateway_config(home_community_id=HCID, port=1, upstreams={})["server"]
