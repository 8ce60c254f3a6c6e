"""The two readers of RAD-69 / RAD-75 answers, neither of them the gateway's own splitter.

* :func:`parse_answer` — a whole body in memory, split by the standard library's ``email``
  parser (``policy=email.policy.HTTP``). That parser removes exactly one line break before each
  delimiter, so parts that begin or end with CR/LF bytes come back byte-exact
  (``test_soapclient`` checks it). It holds the message several times over as text: fine for
  small and medium answers (about 35 ms per MB).
  One leniency: it takes a line beginning with ``--boundary`` after a bare CR or LF for a
  delimiter, where RFC 2046 §5.1.1 requires CR LF; with random boundaries that never happens.
* :func:`read_file_answer` — a body saved to disk (large answers), scanned through ``mmap``
  for ``CRLF--boundary`` delimiters; parts are hashed where they lie, only the root part is
  read into memory.

Both end in :func:`tests.functional.soapanswer.assemble_answer`. No network I/O.
"""

from __future__ import annotations

import binascii
import email.errors
import email.parser
import email.policy
import hashlib
import mmap
from collections.abc import Iterator
from pathlib import Path

from tests.functional.soapanswer import (
    AnswerPart,
    PartDigest,
    SoapAnswer,
    assemble_answer,
    content_id_of,
    content_type_params,
    part_digest,
    root_index_of,
)

__all__ = ["ROOT_CAP", "parse_answer", "read_file_answer"]

ROOT_CAP = 64 * 1024 * 1024  # bytes of a root part read from a file answer
_HEADERS_CAP = 64 * 1024
_SLICE = 1024 * 1024


# -- in memory (email) ---------------------------------------------------------------------


def parse_answer(http_status: int, content_type: str, body: bytes) -> SoapAnswer:
    """Read a whole answer body: MTOM (``multipart/related``) or plain SOAP (anything else).

    Never raises for a malformed answer: what could not be read is left empty and
    ``problem`` says what went wrong.
    """
    media_type, params = content_type_params(content_type)
    if media_type != "multipart/related":
        return assemble_answer(http_status, content_type, body, root=body, parts=(), params=None)
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    parts = []
    for sub in message.iter_parts() if message.is_multipart() else ():
        payload = sub.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        parts.append(
            AnswerPart(
                content_id=content_id_of(sub.get("Content-ID")),
                content_type=_header_text(sub.get("Content-Type")),
                transfer_encoding=_header_text(sub.get("Content-Transfer-Encoding")),
                content=content,
                digest=part_digest(content),
            )
        )
    closed = message.is_multipart() and not any(
        isinstance(defect, email.errors.CloseBoundaryNotFoundDefect) for defect in message.defects
    )
    return assemble_answer(
        http_status, content_type, body, root=None, parts=parts, params=params, closed=closed
    )


def _header_text(value: object) -> str | None:
    return None if value is None else str(value)


# -- from a file (mmap) --------------------------------------------------------------------


def read_file_answer(http_status: int, content_type: str, path: Path) -> SoapAnswer:
    """Read an answer saved to ``path`` without loading it: parts are hashed in place, the
    root part (at most :data:`ROOT_CAP` bytes) is the only one read. Documents come with
    ``content`` None and their :attr:`SoapAnswer.digests`."""
    media_type, params = content_type_params(content_type)
    if path.stat().st_size == 0:
        return assemble_answer(http_status, content_type, None, root=b"", parts=(), params=None)
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        if media_type != "multipart/related":
            return assemble_answer(
                http_status, content_type, None, root=mm[:ROOT_CAP], parts=(), params=None
            )
        boundary = params.get("boundary", "").encode("latin-1", "replace")
        spans, closed = _spans(mm, boundary) if boundary else ([], False)
        parts = [_file_part(mm, headers, start, end) for headers, start, end in spans]
        root_at = root_index_of(parts, params)
        root: bytes | None = None
        if root_at is not None:
            _, start, end = spans[root_at]
            root = mm[start : min(end, start + ROOT_CAP)]
    return assemble_answer(
        http_status, content_type, None, root=root, parts=parts, params=params, closed=closed
    )


def _spans(mm: mmap.mmap, boundary: bytes) -> tuple[list[tuple[bytes, int, int]], bool]:
    """``[(header bytes, body start, body end)]`` of each part, and whether the closing
    delimiter was seen (RFC 2046 §5.1.1: a delimiter is CRLF ``--boundary``, then ``--`` or
    optional blanks and CRLF)."""
    dash = b"--" + boundary
    at = 0 if mm[: len(dash)] == dash and _is_delimiter(mm, len(dash)) else None
    if at is None:
        found = _next_delimiter(mm, dash, 0)
        if found is None:
            return [], False
        at = found + 2
    spans: list[tuple[bytes, int, int]] = []
    while True:
        after = at + len(dash)
        if mm[after : after + 2] == b"--":
            return spans, True
        line_end = _delimiter_end(mm, after)
        assert line_end is not None
        header_end = mm.find(b"\r\n\r\n", line_end - 2)
        if header_end < 0 or header_end - line_end > _HEADERS_CAP:
            return spans, False
        headers = mm[line_end:header_end]
        start = header_end + 4
        following = _next_delimiter(mm, dash, start)
        if following is None:
            spans.append((headers, start, len(mm)))
            return spans, False
        spans.append((headers, start, following))
        at = following + 2


def _delimiter_end(mm: mmap.mmap, after: int) -> int | None:
    """Just past the CRLF ending a delimiter line whose boundary ends at ``after``."""
    index = after
    while mm[index : index + 1] in (b" ", b"\t"):
        index += 1
    return index + 2 if mm[index : index + 2] == b"\r\n" else None


def _is_delimiter(mm: mmap.mmap, after: int) -> bool:
    """Whether the boundary ending at ``after`` is followed as a delimiter must be."""
    return mm[after : after + 2] == b"--" or _delimiter_end(mm, after) is not None


def _next_delimiter(mm: mmap.mmap, dash: bytes, start: int) -> int | None:
    """Position of the CR of the next ``CRLF--boundary`` delimiter from ``start``."""
    needle = b"\r\n" + dash
    index = mm.find(needle, start)
    while index >= 0:
        if _is_delimiter(mm, index + len(needle)):
            return index
        index = mm.find(needle, index + 1)
    return None


def _file_part(mm: mmap.mmap, raw_headers: bytes, start: int, end: int) -> AnswerPart:
    headers = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        raw_headers + b"\r\n\r\n", headersonly=True
    )
    encoding = _header_text(headers.get("Content-Transfer-Encoding"))
    digest = hashlib.sha256()
    length = 0
    slices = _slices(mm, start, end)
    for chunk in _base64_chunks(slices) if (encoding or "").lower() == "base64" else slices:
        digest.update(chunk)
        length += len(chunk)
    return AnswerPart(
        content_id=content_id_of(headers.get("Content-ID")),
        content_type=_header_text(headers.get("Content-Type")),
        transfer_encoding=encoding,
        content=None,
        digest=PartDigest(length, digest.hexdigest()),
    )


def _slices(mm: mmap.mmap, start: int, end: int) -> Iterator[bytes]:
    for offset in range(start, end, _SLICE):
        yield mm[offset : min(end, offset + _SLICE)]


def _base64_chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Decode base64 text arriving in pieces, carrying the 0-3 characters of an incomplete
    quantum to the next piece."""
    carry = b""
    for chunk in chunks:
        text = carry + chunk.translate(None, b" \t\r\n")
        usable = len(text) - len(text) % 4
        carry = text[usable:]
        yield binascii.a2b_base64(text[:usable])
    if carry:
        yield binascii.a2b_base64(carry + b"=" * (-len(carry) % 4))
