"""An independent RAD-69 / RAD-75 consumer for functional tests (xcai-digest.md §2, §9).

It shares nothing with the gateway's SOAP and MTOM code: envelopes are written by hand with
lxml (:mod:`tests.functional.soapwire`), answers are split by the standard library's
``email`` parser or an ``mmap`` scan (:mod:`tests.functional.soapreaders`) and read into a
:class:`SoapAnswer` (:mod:`tests.functional.soapanswer`). Import everything
from here::

    envelope = rad_request(docs, [EXPLICIT_LE], action=RAD75, to=url)
    answer = await send(session, url, envelope, action=RAD75)
    assert answer.status == SUCCESS and answer.relates_to == message_id

:func:`send` reads the whole answer into memory (small and medium studies);
:func:`send_to_file` streams it to disk and reads it back in place (large ones);
:func:`send_raw` posts any bytes under any Content-Type (hostile bodies), and the
``*_envelope`` builders below make the classic hostile XML documents.

Cancellation: each coroutine only awaits aiohttp; cancelling it closes the response.
Raises whatever aiohttp raises when the connection fails or is aborted mid-body
(``aiohttp.ClientPayloadError`` — checklist 15 relies on it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.functional.soapanswer import (
    AnswerPart,
    Fault,
    PartDigest,
    ReturnedDocument,
    SoapAnswer,
    content_type_params,
)
from tests.functional.soapreaders import parse_answer, read_file_answer
from tests.functional.soapwire import (
    ANONYMOUS,
    ERROR,
    EXPLICIT_LE,
    FAILURE,
    IHERAD,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75,
    RAD75_RESPONSE,
    RS,
    SOAP12,
    SUCCESS,
    WARNING,
    WSA,
    XDSB,
    XOP,
    Doc,
    Part,
    RegistryErrorRow,
    Returned,
    cid_url,
    mtom_package,
    new_message_id,
    plain_content_type,
    rad_request,
    rad_response,
)

__all__ = [
    "ANONYMOUS",
    "ERROR",
    "EXPLICIT_LE",
    "FAILURE",
    "IHERAD",
    "PARTIAL_SUCCESS",
    "RAD69",
    "RAD69_RESPONSE",
    "RAD75",
    "RAD75_RESPONSE",
    "RS",
    "SOAP12",
    "SUCCESS",
    "WARNING",
    "WSA",
    "XDSB",
    "XOP",
    "AnswerPart",
    "Doc",
    "Fault",
    "FileAnswer",
    "Part",
    "PartDigest",
    "RegistryErrorRow",
    "Returned",
    "ReturnedDocument",
    "SoapAnswer",
    "cid_url",
    "content_type_params",
    "entity_expansion_envelope",
    "external_entity_envelope",
    "mtom_package",
    "nested_envelope",
    "new_message_id",
    "oversized_envelope",
    "parse_answer",
    "plain_content_type",
    "rad_request",
    "rad_response",
    "read_file_answer",
    "request_package",
    "send",
    "send_raw",
    "send_to_file",
]

_CHUNK = 64 * 1024
Body = bytes | AsyncIterable[bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileAnswer:
    """An answer whose body was streamed to ``path``."""

    http_status: int
    content_type: str
    path: Path
    size: int

    def read(self) -> SoapAnswer:
        """The answer read in place (documents with ``content`` None, see ``digests``).
        Blocks while it hashes the file: async tests call it through ``asyncio.to_thread``."""
        return read_file_answer(self.http_status, self.content_type, self.path)


def request_package(
    envelope: bytes, *, action: str, mtom: bool = True, extra_parts: Sequence[Part] = ()
) -> tuple[str, bytes]:
    """``(Content-Type, body)`` of a request: MTOM with the root first (what NIST requires,
    xcai-digest.md §2.1) or plain ``application/soap+xml``; both carry ``action``."""
    if mtom:
        return mtom_package(envelope, action=action, parts=extra_parts)
    if extra_parts:
        raise ValueError("extra parts need an MTOM package")
    return plain_content_type(action), envelope


async def send(
    session: aiohttp.ClientSession,
    url: str,
    envelope: bytes,
    *,
    action: str,
    mtom: bool = True,
    extra_parts: Sequence[Part] = (),
    headers: Mapping[str, str] | None = None,
) -> SoapAnswer:
    """POST a request envelope and read the whole answer (:func:`parse_answer`)."""
    content_type, body = request_package(
        envelope, action=action, mtom=mtom, extra_parts=extra_parts
    )
    return await send_raw(session, url, body, content_type, headers=headers)


async def send_raw(
    session: aiohttp.ClientSession,
    url: str,
    body: Body,
    content_type: str | None,
    *,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> SoapAnswer:
    """Send any body (bytes, or an async iterable sent chunked) under ``content_type`` (None:
    no Content-Type header at all) and read whatever comes back."""
    async with _request(session, url, body, content_type, headers, method) as response:
        data = await response.read()
        return parse_answer(response.status, response.headers.get("Content-Type", ""), data)


async def send_to_file(
    session: aiohttp.ClientSession,
    url: str,
    envelope: bytes,
    path: Path,
    *,
    action: str,
    mtom: bool = True,
    extra_parts: Sequence[Part] = (),
    headers: Mapping[str, str] | None = None,
) -> FileAnswer:
    """POST a request envelope and stream the answer's body to ``path`` in 64 KiB chunks
    (bounded memory); :meth:`FileAnswer.read` then reads it in place."""
    content_type, body = request_package(
        envelope, action=action, mtom=mtom, extra_parts=extra_parts
    )
    async with _request(session, url, body, content_type, headers, "POST") as response:
        handle = await asyncio.to_thread(path.open, "wb")
        size = 0
        try:
            async for chunk in response.content.iter_chunked(_CHUNK):
                await asyncio.to_thread(handle.write, chunk)
                size += len(chunk)
        finally:
            await asyncio.to_thread(handle.close)
        return FileAnswer(
            http_status=response.status,
            content_type=response.headers.get("Content-Type", ""),
            path=path,
            size=size,
        )


@asynccontextmanager
async def _request(
    session: aiohttp.ClientSession,
    url: str,
    body: Body,
    content_type: str | None,
    headers: Mapping[str, str] | None,
    method: str,
) -> AsyncIterator[aiohttp.ClientResponse]:
    sent = dict(headers or {})
    skip: tuple[str, ...] = ()
    if content_type is None:
        skip = ("Content-Type",)
    else:
        sent["Content-Type"] = content_type
    async with session.request(
        method, url, data=body, headers=sent, skip_auto_headers=skip
    ) as response:
        yield response


# -- hostile envelopes (each must be refused without effect) ------------------------------


def entity_expansion_envelope(levels: int = 10) -> bytes:
    """A SOAP envelope whose DTD defines entities that expand tenfold per level
    ("billion laughs"): 10**``levels`` copies of a word once expanded."""
    entities = ['<!ENTITY e0 "lol">']
    entities += [f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, levels + 1)]
    doctype = "<!DOCTYPE s:Envelope [" + "".join(entities) + "]>"
    return _with_body(doctype, f"<x>&e{levels};</x>")


def external_entity_envelope(system_url: str) -> bytes:
    """A SOAP envelope whose body pulls an external entity (``file:`` or ``http:`` URL)."""
    doctype = f'<!DOCTYPE s:Envelope [<!ENTITY ext SYSTEM "{system_url}">]>'
    return _with_body(doctype, "<x>&ext;</x>")


def nested_envelope(depth: int) -> bytes:
    """A SOAP envelope whose body nests ``depth`` elements."""
    return _with_body("", "<x>" * depth + "</x>" * depth)


def oversized_envelope(size: int, documents: Sequence[Doc], *, action: str, to: str) -> bytes:
    """A valid request envelope grown to at least ``size`` bytes by a comment in its
    Header (so that only its size is wrong)."""
    envelope = rad_request(documents, [EXPLICIT_LE], action=action, to=to)
    marker = b"<s:Header>"
    assert marker in envelope
    padding = max(0, size - len(envelope) - 7)
    return envelope.replace(marker, marker + b"<!--" + b"x" * padding + b"-->", 1)


def _with_body(doctype: str, body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}'
        f'<s:Envelope xmlns:s="{SOAP12}" xmlns:a="{WSA}"><s:Header>'
        f'<a:Action s:mustUnderstand="true">{RAD69}</a:Action>'
        "<a:MessageID>urn:uuid:6b0f1e2a-8a43-4c3e-9a55-0d7f3c1e2b10</a:MessageID>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()
