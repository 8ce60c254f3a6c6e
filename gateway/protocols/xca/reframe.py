"""The documents of a SOAP answer re-framed as DICOMweb parts (xcai-digest.md §6.4 item 3;
checklist 34): one ``multipart/related; type="application/dicom"`` body, each document one
part headed ``Content-Type: application/dicom; transfer-syntax=<its File Meta (0002,0010)>``,
its bytes unchanged.

The transfer syntax is read from the part's own first bytes (PS3.10 §7.1), so a part is held
until its File Meta group has come — at most :data:`HEAD_BYTES` plus one chunk — then written
as it arrives; what it holds is also where its identity (patient, study, series) is read
for the exchange's tally. Used by the RAD-160 bridge (:mod:`.fromweb`) and by
``POST /mado/retrieve`` for planned retrievals whose upstream speaks SOAP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from gateway.exchange import Exchange
from gateway.protocols.xca.model import DocumentResponse
from gateway.protocols.xca.results import Part, PartFailed
from gateway.relay.dicomheader import read_identity, read_transfer_syntax
from gateway.relay.multipart import part_head
from routing.ids import Uid
from routing.media import MediaType

__all__ = ["HEAD_BYTES", "dicom_part_type", "multipart_type", "write_documents"]

HEAD_BYTES = 16 * 1024
"""Bytes of a part held at most until its File Meta transfer syntax is read; also what its
identity (patient, study, series) is read from."""

_INSTANCE_TYPE = "application/dicom"


def multipart_type(boundary: str) -> str:
    """``multipart/related; type="application/dicom"; boundary=…`` (PS3.18 §8.7.3.5)."""
    parameters = (("type", _INSTANCE_TYPE), ("boundary", boundary))
    return str(MediaType(type="multipart", subtype="related", parameters=parameters))


def dicom_part_type(transfer_syntax: str | None) -> str:
    """A part's Content-Type: ``application/dicom; transfer-syntax=UID``; without the
    parameter when the File Meta could not be read or does not hold a valid UID (a peer's
    bytes never become header text unchecked)."""
    if transfer_syntax is None or not Uid.is_valid(transfer_syntax):
        return _INSTANCE_TYPE
    return f"{_INSTANCE_TYPE}; transfer-syntax={transfer_syntax}"


async def write_documents(
    documents: Sequence[DocumentResponse],
    parts: AsyncIterator[Part],
    write: Callable[[bytes], Awaitable[None]],
    boundary: str,
    exchange: Exchange,
) -> int:
    """Write each of ``documents`` (the returned documents of one group's answer) as one
    DICOMweb part under ``boundary`` (checklist 34): those sent inline first, then the MTOM
    ``parts`` in arrival order. Parts no document names are skipped, a repeated one too.
    Returns the parts written; raises :class:`~.results.PartFailed` (``unresolved``) when
    the answer ended before a named part came, and whatever a part's chunks or ``write``
    raise. The closing delimiter is the caller's (it seals the exchange first)."""
    written = 0
    wanted: set[str] = set()
    for document in documents:
        if document.inline is not None:
            await _write_part(_once(document.inline), write, boundary, exchange)
            written += 1
        elif document.content_id is not None:
            wanted.add(document.content_id)
    async for part in parts:
        if part.content_id not in wanted:
            await part.skip()
            continue
        wanted.discard(part.content_id)
        await _write_part(part.chunks, write, boundary, exchange)
        written += 1
    if wanted:
        raise PartFailed("unresolved")
    return written


async def _write_part(
    chunks: AsyncIterator[bytes],
    write: Callable[[bytes], Awaitable[None]],
    boundary: str,
    exchange: Exchange,
) -> None:
    """One part: its head once the File Meta transfer syntax is read from its first bytes
    (or :data:`HEAD_BYTES` have come without it, or the part ended), then its bytes as they
    come. Its identity goes to the exchange's tally."""
    head = bytearray()
    held: list[bytes] = []  # chunks waiting for the head to be written
    started = False
    async for chunk in chunks:
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        if started:
            await write(chunk)
            exchange.bytes_sent += len(chunk)
            continue
        held.append(chunk)
        syntax = read_transfer_syntax(bytes(head))
        if syntax is None and len(head) < HEAD_BYTES:
            continue
        await _flush(write, boundary, syntax, held, exchange)
        held, started = [], True
    if not started:  # a part shorter than its File Meta group, or than HEAD_BYTES
        await _flush(write, boundary, read_transfer_syntax(bytes(head)), held, exchange)
    identity = read_identity(bytes(head))
    if identity is not None:
        exchange.note_instance(identity)


async def _flush(
    write: Callable[[bytes], Awaitable[None]],
    boundary: str,
    syntax: str | None,
    held: Sequence[bytes],
    exchange: Exchange,
) -> None:
    await write(part_head(boundary, {"Content-Type": dicom_part_type(syntax)}))
    for chunk in held:
        await write(chunk)
        exchange.bytes_sent += len(chunk)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data
