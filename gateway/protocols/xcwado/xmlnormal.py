"""XML metadata made plain before its URLs are rewritten: one streaming pass, bounded memory.

An XML parser joins character data across comments, CDATA sections and processing
instructions: ``http://pa<!-- -->cs:8042/`` and ``http://pa<![CDATA[cs]]>:8042/`` are the
text ``http://pacs:8042/`` to whoever reads the document. So that a URL is always one
contiguous run of characters and character references, :class:`XmlNormaliser`

* drops comments and processing instructions (the ``<?xml …?>`` declaration stays): the
  Native DICOM Model (PS3.19 §A.1) carries nothing in them;
* rewrites CDATA sections as escaped character data — the same text to any parser;
* refuses a document type declaration (:class:`NotRewritable`): entities declared in it
  could spell a URL in pieces, and no DICOM XML has one;
* in a multipart body (RFC 2046 §5.1), keeps only the part headers that describe the part
  (``Content-Type``, ``Content-ID``, ``Content-Description``, ``Content-Transfer-Encoding``,
  ``MIME-Version``): a part's ``Content-Length`` is wrong once its URLs are rewritten, and
  its ``Content-Location`` names the source.

Memory held between calls: the start of a construct that has not ended, at most
:data:`MAX_HEADER_BYTES` for a part's headers, a few bytes otherwise.
"""

from __future__ import annotations

import enum

from gateway.relay.multipart import delimiter

__all__ = ["MAX_HEADER_BYTES", "NotRewritable", "XmlNormaliser"]

MAX_HEADER_BYTES = 16 * 1024
_KEPT_PART_HEADERS = frozenset(
    {
        b"content-type",
        b"content-id",
        b"content-description",
        b"content-transfer-encoding",
        b"mime-version",
    }
)
_DECISION = 9  # bytes that tell "<!--", "<![CDATA[" and "<!DOCTYPE" apart
_MAX_DELIMITER_LINE = 1024


class NotRewritable(ValueError):
    """The document cannot be made safe to relay."""


class _State(enum.Enum):
    TEXT = "text"
    DELIMITER = "delimiter"
    HEADERS = "headers"
    COMMENT = "comment"
    PI = "pi"
    CDATA = "cdata"


_TERMINATORS = {_State.COMMENT: b"-->", _State.PI: b"?>", _State.CDATA: b"]]>"}


def _escape(data: bytes) -> bytes:
    return data.replace(b"&", b"&amp;").replace(b"<", b"&lt;").replace(b">", b"&gt;")


class XmlNormaliser:
    """``feed`` chunks, then ``flush``; the output is the normalised stream (module docstring).

    ``boundary``: the multipart boundary, or None for a single XML document. Raises
    :class:`NotRewritable` for a document type declaration or oversized part headers.
    """

    __slots__ = ("_carry", "_delimiter", "_found", "_markers", "_skip", "_state")

    def __init__(self, boundary: str | None) -> None:
        # A virtual CRLF before the body lets the first delimiter be found like the others.
        self._delimiter = delimiter(boundary) if boundary else None
        self._markers = (b"<!", b"<?") + ((self._delimiter,) if self._delimiter else ())
        self._carry = b"\r\n" if self._delimiter else b""
        self._skip = len(self._carry)
        self._state = _State.TEXT
        self._found: dict[bytes, int] = {}

    @property
    def held_bytes(self) -> int:
        return len(self._carry)

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        if self._state is _State.TEXT and not self._carry and not _has_marker(chunk, self._markers):
            # The common case: nothing to change in this chunk but perhaps its last bytes.
            cut = _held_back(chunk, 0, self._markers)
            self._carry = chunk[cut:]
            return chunk[:cut] if cut < len(chunk) else chunk
        return self._emit(self._run(data, final=False))

    def flush(self) -> bytes:
        return self._emit(self._run(self._carry, final=True))

    def _emit(self, out: bytes) -> bytes:
        if self._skip:
            taken = min(self._skip, len(out))
            self._skip -= taken
            return out[taken:]
        return out

    def _run(self, data: bytes, *, final: bool) -> bytes:
        self._found = {}
        out: list[bytes] = []
        index = 0
        while True:
            state = self._state
            if state is _State.TEXT:
                index, done = self._text(data, index, out, final)
            elif state is _State.DELIMITER:
                index, done = self._delimiter_line(data, index, out, final)
            elif state is _State.HEADERS:
                index, done = self._headers(data, index, out, final)
            else:
                index, done = self._inside(data, index, out, final)
            if done:
                break
        self._carry = b"" if final else data[index:]
        if final:
            out.append(data[index:])
        return b"".join(out)

    def _next_marker(self, data: bytes, index: int) -> tuple[int, bytes]:
        # Each marker is searched for again only once the scan has passed where it was found
        # (-1: none left in `data`); _run starts afresh for each buffer.
        hits = []
        for marker in self._markers:
            at = self._found.get(marker, -2)
            if at != -1 and at < index:
                at = self._found[marker] = data.find(marker, index)
            if at >= 0:
                hits.append((at, marker))
        return min(hits) if hits else (-1, b"")

    def _text(self, data: bytes, index: int, out: list[bytes], final: bool) -> tuple[int, bool]:
        at, marker = self._next_marker(data, index)
        if at < 0:
            cut = len(data) if final else _held_back(data, index, self._markers)
            out.append(data[index:cut])
            return cut, True
        out.append(data[index:at])
        if marker == self._delimiter:
            self._state = _State.DELIMITER
            return at, False
        if len(data) - at < _DECISION and not final:
            return at, True
        if data.startswith(b"<!--", at):
            self._state = _State.COMMENT
            return at + 4, False
        if data.startswith(b"<![CDATA[", at):
            self._state = _State.CDATA
            return at + 9, False
        if data[at : at + 9].upper() == b"<!DOCTYPE":
            raise NotRewritable("a document type declaration in XML metadata")
        if data.startswith(b"<?xml", at) and data[at + 5 : at + 6] in (b" ", b"\t", b"\r", b"\n"):
            out.append(b"<?xml")  # the declaration: its encoding matters, keep it
            return at + 5, False
        if marker == b"<?":
            self._state = _State.PI
            return at + 2, False
        out.append(marker)
        return at + len(marker), False

    def _inside(self, data: bytes, index: int, out: list[bytes], final: bool) -> tuple[int, bool]:
        terminator = _TERMINATORS[self._state]
        cdata = self._state is _State.CDATA
        end = data.find(terminator, index)
        delimiter = data.find(self._delimiter, index) if self._delimiter else -1
        if delimiter >= 0 and (end < 0 or delimiter < end):
            # The part ended inside the construct (malformed): the boundary wins (RFC 2046).
            if cdata:
                out.append(_escape(data[index:delimiter]))
            self._state = _State.DELIMITER
            return delimiter, False
        if end < 0:
            keep = max(len(terminator), len(self._delimiter or b"")) - 1
            cut = len(data) if final else max(index, len(data) - keep)
            if cdata:
                out.append(_escape(data[index:cut]))
            return cut, True
        if cdata:
            out.append(_escape(data[index:end]))
        self._state = _State.TEXT
        return end + len(terminator), False

    def _delimiter_line(
        self, data: bytes, index: int, out: list[bytes], final: bool
    ) -> tuple[int, bool]:
        assert self._delimiter is not None
        after = index + len(self._delimiter)
        eol = data.find(b"\r\n", after)
        if eol < 0:
            if len(data) - index > _MAX_DELIMITER_LINE:
                raise NotRewritable("a multipart delimiter line without its end")
            return index, True
        out.append(data[index : eol + 2])
        closing = data.startswith(b"--", after)
        self._state = _State.TEXT if closing else _State.HEADERS
        if closing:
            self._markers = (b"<!", b"<?")  # the epilogue: no more parts
        return eol + 2, False

    def _headers(self, data: bytes, index: int, out: list[bytes], final: bool) -> tuple[int, bool]:
        if data.startswith(b"\r\n", index):
            end = index
        else:
            end = data.find(b"\r\n\r\n", index)
            if end < 0:
                if len(data) - index > MAX_HEADER_BYTES:
                    raise NotRewritable("multipart part headers larger than allowed")
                return index, True
            for line in data[index:end].split(b"\r\n"):
                name = line.partition(b":")[0].strip().lower()
                if name in _KEPT_PART_HEADERS:
                    out.append(line + b"\r\n")
        out.append(b"\r\n")
        self._state = _State.TEXT
        return end + (2 if end == index else 4), False


def _has_marker(data: bytes, markers: tuple[bytes, ...]) -> bool:
    return any(m in data for m in markers)


def _held_back(data: bytes, index: int, markers: tuple[bytes, ...]) -> int:
    """Where the bytes that could begin a marker (cut by the end of ``data``) start."""
    longest = max(len(m) for m in markers)
    for start in range(max(index, len(data) - longest + 1), len(data)):
        tail = data[start:]
        if any(m.startswith(tail) for m in markers):
            return start
    return len(data)
