"""Multipart framing (RFC 2046 §5.1.1): the boundary, the close check, and a splitter.

* :func:`boundary_of` reads the ``boundary`` parameter of a Content-Type and refuses one that
  RFC 2046 does not allow (missing, repeated, empty, longer than 70 characters, a character
  outside ``bchars``, a trailing space): without a boundary there is no way to tell a
  complete multipart body from a cut one.
* :class:`CloseCheck` tells from the last bytes of a body alone whether it ended with its
  close delimiter — CRLF ``--boundary--``, then only transport padding and, after a CRLF, an
  epilogue of at most :data:`EPILOGUE_ALLOWANCE` bytes. The one delimiter without a CRLF
  before it is the one that opens the body. The relay keeps only that tail.
* :class:`MultipartSplitter` delivers parts in pieces as they arrive — headers once, then
  body bytes — so memory stays bounded by the chunk size plus one delimiter, however large a
  part is. The pass-through path never uses it (it relays bytes as they are); the MADO
  consumer does, to store each instance or to re-frame several answers into one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from routing.media import MediaType, MediaTypeError, parse_media_type

__all__ = [
    "EPILOGUE_ALLOWANCE",
    "CloseCheck",
    "MultipartError",
    "PartBytes",
    "PartEnd",
    "PartStart",
    "MultipartSplitter",
    "boundary_in",
    "boundary_of",
    "closing",
    "delimiter",
    "part_head",
]

_MAX_HEADER_BYTES = 16 * 1024
EPILOGUE_ALLOWANCE = 256
"""Bytes after the close delimiter (padding, CRLF, epilogue) a complete body may have."""

_MAX_BOUNDARY = 70
_BCHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")


class MultipartError(ValueError):
    """The body is not well-formed multipart (missing boundary, oversized headers, no end)."""


@dataclass(frozen=True, slots=True)
class PartStart:
    headers: dict[str, str]  # lower-case names


@dataclass(frozen=True, slots=True)
class PartBytes:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event = PartStart | PartBytes | PartEnd


class _State(enum.Enum):
    PREAMBLE = 1
    HEADERS = 2
    BODY = 3
    DONE = 4


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a multipart Content-Type (RFC 2046 §5.1.1, RFC 2045 §5.1).

    Raises :class:`MultipartError` when the parameters cannot be read, or when the boundary
    is missing, given twice, empty, longer than 70 characters, has a character outside
    ``bchars`` or ends in a space.
    """
    try:
        media = parse_media_type(content_type)
    except MediaTypeError as exc:
        raise MultipartError("multipart answer with an unreadable Content-Type") from exc
    return boundary_in(media)


def boundary_in(media: MediaType) -> str:
    """:func:`boundary_of` for a Content-Type already parsed."""
    boundaries = media.values("boundary")
    if not boundaries:
        raise MultipartError("multipart answer without a boundary parameter")
    if len(boundaries) > 1:
        raise MultipartError("multipart answer with more than one boundary parameter")
    boundary = boundaries[0]
    if not 0 < len(boundary) <= _MAX_BOUNDARY:
        raise MultipartError("multipart boundary empty or longer than 70 characters")
    if not _BCHARS.issuperset(boundary) or boundary.endswith(" "):
        raise MultipartError("multipart boundary with a character RFC 2046 does not allow")
    return boundary


def delimiter(boundary: str) -> bytes:
    """CRLF ``--boundary``: what each part opens with, and what every reader searches for.

    Readers start from a virtual CRLF (:attr:`CloseCheck.START`) so the delimiter that
    opens a body is found like the others.
    """
    return b"\r\n--" + boundary.encode("latin-1")


def part_head(boundary: str, headers: Mapping[str, str]) -> bytes:
    """The delimiter and header block that open one part (RFC 2046 §5.1.1)."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return delimiter(boundary) + b"\r\n" + lines.encode("latin-1") + b"\r\n"


def closing(boundary: str) -> bytes:
    """The close delimiter that ends a body, and the CRLF after it."""
    return delimiter(boundary) + b"--\r\n"


class CloseCheck:
    """Whether a multipart body ended with its close delimiter, judged from its tail alone.

    The reader keeps ``tail``: it starts as :data:`START` (a virtual CRLF: the body may open
    with its first delimiter) and after each block becomes the last :attr:`window` bytes of
    ``tail + block`` (:meth:`keep`). :meth:`complete` is exact for a body whose epilogue
    (padding, CRLF and text after the close delimiter) is at most
    :data:`EPILOGUE_ALLOWANCE` bytes: true for every complete body, false for every body cut
    before the end of its close delimiter — in a part whose data reads ``--boundary--``
    without a CRLF before it too.
    """

    __slots__ = ("_close", "window")

    START = b"\r\n"

    def __init__(self, boundary: str) -> None:
        # No regular expression: every answer has a boundary of its own (Orthanc's are
        # random), and compiling one per answer was a tenth of a small request's CPU.
        self._close = delimiter(boundary) + b"--"
        self.window = len(self._close) + EPILOGUE_ALLOWANCE

    def keep(self, tail: bytes, block: bytes) -> bytes:
        """The tail after ``block`` (the relay inlines this expression in its loops)."""
        window = self.window
        return block if len(block) >= window else (tail + block)[-window:]

    def complete(self, tail: bytes) -> bool:
        """Some close delimiter in ``tail`` is followed by nothing but transport padding
        and, after a CRLF, anything."""
        close, found = self._close, tail.find(self._close)
        while found >= 0:
            after = tail[found + len(close) :].lstrip(b" \t")
            if not after or after.startswith(b"\r\n"):
                return True
            found = tail.find(close, found + 1)
        return False


class MultipartSplitter:
    """Feed chunks, iterate events. Call :meth:`close` at the end of the body."""

    def __init__(self, boundary: str) -> None:
        self._delimiter = delimiter(boundary)
        self._buffer = CloseCheck.START  # the body may open with the first delimiter itself
        self._state = _State.PREAMBLE

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def feed(self, chunk: bytes) -> Iterator[Event]:
        self._buffer += chunk
        while True:
            if self._state is _State.PREAMBLE:
                found = self._buffer.find(self._delimiter)
                if found < 0:
                    self._buffer = self._buffer[-(len(self._delimiter) - 1) :]
                    return
                self._buffer = self._buffer[found + len(self._delimiter) :]
                self._state = _State.HEADERS
            elif self._state is _State.HEADERS:
                if len(self._buffer) < 2:
                    return
                if self._buffer.startswith(b"--"):
                    self._state = _State.DONE
                    self._buffer = b""
                    return
                # The cap holds however the body is cut: a header block longer than it is
                # refused even when it arrives whole in one chunk.
                end = self._buffer.find(b"\r\n\r\n", 0, _MAX_HEADER_BYTES + 4)
                if end < 0:
                    if len(self._buffer) >= _MAX_HEADER_BYTES + 4:
                        raise MultipartError("part headers too large")
                    return
                yield PartStart(_headers(self._buffer[:end]))
                self._buffer = self._buffer[end + 4 :]
                self._state = _State.BODY
            elif self._state is _State.BODY:
                found = self._buffer.find(self._delimiter)
                if found < 0:
                    keep = len(self._delimiter) - 1
                    if len(self._buffer) > keep:
                        yield PartBytes(self._buffer[:-keep])
                        self._buffer = self._buffer[-keep:]
                    return
                if found:
                    yield PartBytes(self._buffer[:found])
                yield PartEnd()
                self._buffer = self._buffer[found + len(self._delimiter) :]
                self._state = _State.HEADERS
            else:
                self._buffer = b""
                return

    def close(self) -> None:
        """Raise :class:`MultipartError` unless the closing delimiter was seen."""
        if self._state is not _State.DONE:
            raise MultipartError("multipart body ended before its closing boundary")


def _headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.split(b"\r\n"):
        if not line.strip():
            continue  # transport padding / the CRLF after the delimiter
        name, separator, value = line.decode("latin-1").partition(":")
        if separator:
            headers[name.strip().lower()] = value.strip()
    return headers
