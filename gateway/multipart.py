"""A streaming multipart/related splitter, for the places that must re-frame or store parts.

The pass-through path never uses this (it relays bytes as they are); the MADO consumer
helper does, to write each instance to its own file and to merge several DICOMweb answers
into one multipart response. Parts are delivered in pieces as they arrive — headers once,
then body bytes — so memory stays bounded by the chunk size plus one delimiter, however large
a part is. RFC 2046 §5.1.1: parts are separated by CRLF ``--boundary``; the first delimiter
may open the body; ``--boundary--`` closes it; preamble and epilogue are ignored.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "MultipartError",
    "PartBytes",
    "PartEnd",
    "PartStart",
    "MultipartSplitter",
    "boundary_of",
]

_MAX_HEADER_BYTES = 16 * 1024


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
    """The ``boundary`` parameter; :class:`MultipartError` when there is none."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "boundary" and value.strip().strip('"'):
            return value.strip().strip('"')
    raise MultipartError("multipart answer without a boundary parameter")


class MultipartSplitter:
    """Feed chunks, iterate events. Call :meth:`close` at the end of the body."""

    def __init__(self, boundary: str) -> None:
        self._delimiter = b"\r\n--" + boundary.encode("latin-1")
        self._buffer = b"\r\n"  # the body may open with the first delimiter itself
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
                end = self._buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buffer) > _MAX_HEADER_BYTES:
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
