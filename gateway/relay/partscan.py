"""Noting each DICOM instance of a multipart answer as it streams by, without holding parts.

The relay loop hands every chunk it has written to :meth:`PartScanner.feed`. The scanner is
a three-state machine over the byte stream:

* search — look for the part delimiter, CRLF ``--boundary`` (RFC 2046 §5.1.1; the first one
  may stand at the very start of the body, hence the virtual CRLF before it);
* capture — keep the first :data:`HEADER_BYTES` of the part (its MIME headers and the start
  of its Part 10 object) and read the identifiers from them (:mod:`gateway.relay.dicomheader`);
* skip — when the part announced its ``Content-Length`` (Orthanc's parts do), pass over the
  rest of its body without searching it; failing that, pass over native Pixel Data, whose
  length the DICOM header gives.

So the cost per chunk is one comparison in skip, or one ``bytes.find`` in search, plus one
header parse per part. Memory: at most :data:`HEADER_BYTES` and a delimiter's length. A relay
that can move bytes without reading them (:mod:`gateway.relay.rawcopy`) asks
:meth:`PartScanner.skippable` how many it may send unseen and reports them with
:meth:`PartScanner.pass_over`: only part heads, the first :data:`HEADER_BYTES` of each part
and what lies between parts need to be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from gateway.exchange import InstanceSeen
from gateway.relay.dicomheader import read_header
from gateway.relay.multipart import delimiter

__all__ = ["HEADER_BYTES", "PartScanner"]

HEADER_BYTES = 16 * 1024
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*([0-9]{1,15})[ \t]*$")


class PartScanner:
    """Calls ``on_instance(identity)`` for each part whose DICOM header could be read."""

    __slots__ = (
        "_capture",
        "_closed",
        "_delimiter",
        "_on_instance",
        "_skip",
        "_tail",
        "unreadable",
    )

    def __init__(self, boundary: str, on_instance: Callable[[InstanceSeen], None]) -> None:
        self._delimiter = delimiter(boundary)
        self._on_instance = on_instance
        self._tail = b"\r\n"  # bytes before the current search position that may start a delimiter
        self._capture: bytearray | None = None
        self._skip = 0
        self._closed = False
        self.unreadable = 0  # parts whose DICOM header could not be read

    def feed(self, data: bytes) -> None:
        keep = len(self._delimiter) - 1
        position, size = 0, len(data)
        while position < size and not self._closed:
            if self._capture is not None:
                room = HEADER_BYTES - len(self._capture)
                self._capture += data[position : position + room]
                position = min(size, position + room)
                if len(self._capture) >= HEADER_BYTES:
                    self._finish()
            elif self._skip:
                step = min(self._skip, size - position)
                self._skip -= step
                position += step
            else:
                after = self._find(data, position)
                if after < 0:
                    rest = data[position:]
                    self._tail = rest[-keep:] if len(rest) >= keep else (self._tail + rest)[-keep:]
                    return
                self._tail = b""
                self._capture = bytearray()
                position = after

    def skippable(self) -> int:
        """How many of the next bytes the scanner would pass over without looking at them
        (the rest of a part's body of known length): a relay may send them unseen and say
        so with :meth:`pass_over`."""
        return self._skip if self._capture is None and not self._closed else 0

    def pass_over(self, count: int) -> None:
        """``count`` bytes (at most :meth:`skippable`) went by unseen."""
        if not 0 <= count <= self.skippable():
            raise ValueError("passed over more than the scanner would skip")
        self._skip -= count

    def close(self) -> None:
        """The body has ended: read a part still being captured from what arrived."""
        while self._capture is not None:  # each finish may open the next (short) part
            self._finish()

    def _find(self, data: bytes, position: int) -> int:
        """Index just after the next delimiter at or after ``position``, or -1."""
        delimiter = self._delimiter
        if self._tail:  # a delimiter that began before `position`
            window = self._tail + data[position : position + len(delimiter) - 1]
            found = window.find(delimiter)
            if 0 <= found < len(self._tail):
                return position + found + len(delimiter) - len(self._tail)
        found = data.find(delimiter, position)
        return -1 if found < 0 else found + len(delimiter)

    def _finish(self) -> None:
        capture, self._capture = bytes(self._capture or b""), None
        following = capture.find(self._delimiter)  # a short part: the next one starts here
        own = capture if following < 0 else capture[:following]
        if own.startswith(b"--"):  # the close delimiter "--boundary--": nothing follows
            self._closed = True
            return
        head, separator, body = own.partition(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        found = read_header(body, extent=length is None) if separator else (None, None)
        identity, pixels_end = found
        if identity is None:
            self.unreadable += 1
        else:
            self._on_instance(identity)
        if following >= 0:
            self._tail = b""
            self.feed(capture[following:])
            return
        if length is not None and int(length.group(1)) >= len(body):
            self._skip = int(length.group(1)) - len(body)
            self._tail = b""
        elif pixels_end is not None and pixels_end >= len(body):
            # No length announced: the pixels cannot hold the delimiter's place, so pass over
            # them and search only what follows (trailing elements, then the delimiter).
            self._skip = pixels_end - len(body)
            self._tail = b""
        else:
            self._tail = capture[-(len(self._delimiter) - 1) :]
