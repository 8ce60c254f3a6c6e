"""Where DICOM metadata carries URL references, and how their values are written.

A URL reference in metadata can be relative, and a relative reference is only recognisable
by where it sits. These are the places (PS3.18 §F.2.2 and Table F.3.1-1, PS3.19 §A.1.5):

======================================  ================================================
DICOM JSON                              DICOM XML (Native DICOM Model)
======================================  ================================================
``"BulkDataURI": "…"``                  ``<BulkData uri="…"/>`` (``URI`` too: Orthanc)
``"00081190": {"Value": ["…", …]}``     ``<DicomAttribute tag="00081190"><Value>…</Value>``
``"0040E010": {"Value": ["…", …]}``     the same for ``0040E010``
======================================  ================================================

(0008,1190) is the Retrieve URL, (0040,E010) the Retrieve URI. A key, tag or attribute value
may itself be escaped (``"BulkData\\u0055RI"``, ``tag="0008&#49;190"``); it is decoded
before it is compared.

A *finder* (:data:`JSON_FIELDS`, :data:`XML_FIELDS`) has :meth:`~Finder.find` for where such
a construct may start and :meth:`~Finder.locate`, which reads the construct from there
and returns the byte spans of its URL values with the :class:`Codec` that reads and writes
them, :data:`NEED_MORE` when the construct does not end inside the buffer, or None.

XML comments, CDATA sections and processing instructions are not expected here: the XML
stream has been through :class:`gateway.protocols.xcwado.xmlnormal.XmlNormaliser` first.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["JSON_FIELDS", "NEED_MORE", "XML_FIELDS", "Codec", "Finder", "Located"]

URL_TAGS = frozenset({"00081190", "0040E010"})
_MAX_KEY = 1024
NEED_MORE: Final = "need-more"


class Codec:
    """How one kind of value is written: :meth:`decode` raw bytes to text (``ValueError`` if
    they are not a well-formed value), :meth:`encode` text to raw bytes."""

    def decode(self, raw: bytes) -> str:
        raise NotImplementedError

    def encode(self, text: str) -> bytes:
        raise NotImplementedError


class _JsonString(Codec):
    """The content of a JSON string literal, without its quotes (RFC 8259 §7)."""

    def decode(self, raw: bytes) -> str:
        value = json.loads(b'"' + raw + b'"')
        assert isinstance(value, str)
        return value

    def encode(self, text: str) -> bytes:
        return json.dumps(text, ensure_ascii=False)[1:-1].encode()


_XML_REFERENCE = re.compile(r"&(?:#([0-9]+)|#x([0-9a-fA-F]+)|(amp|lt|gt|quot|apos));")
_XML_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def decode_xml(raw: bytes) -> str:
    """XML character data with its references expanded (XML 1.0 §4.1, §4.6)."""
    text = raw.decode()

    def one(match: re.Match[str]) -> str:
        decimal, hexadecimal, name = match.groups()
        if name:
            return _XML_NAMED[name]
        return chr(int(decimal) if decimal else int(hexadecimal, 16))

    return _XML_REFERENCE.sub(one, text) if "&" in text else text


class _XmlText(Codec):
    def __init__(self, quote: str = "") -> None:
        self.quote = quote

    def decode(self, raw: bytes) -> str:
        try:
            return decode_xml(raw)
        except (UnicodeDecodeError, OverflowError) as exc:
            raise ValueError("not XML character data") from exc

    def encode(self, text: str) -> bytes:
        out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        if self.quote == '"':
            out = out.replace('"', "&quot;")
        elif self.quote == "'":
            out = out.replace("'", "&apos;")
        return out.encode()


JSON_STRING: Final = _JsonString()
XML_TEXT: Final = _XmlText()
_XML_ATTRIBUTE = {b'"': _XmlText('"'), b"'": _XmlText("'")}


@dataclass(frozen=True, slots=True)
class Located:
    """A construct that ends at ``end``; ``values`` are the spans of its URL references."""

    end: int
    values: tuple[tuple[int, int, Codec], ...] = ()


Result = Located | Literal["need-more"] | None


class Finder:
    """Where URL-bearing constructs start in one syntax, and how to read them.

    A construct starts where one of the byte strings ``literals`` occurs, or where
    :meth:`find_other` says (-1: nowhere at or after ``position``); it can be recognised once
    ``max_opener`` bytes from its start are there. The caller remembers what it has found.
    """

    literals: tuple[bytes, ...] = ()
    max_opener: int

    def start_of(self, buf: bytes, hit: int, position: int) -> int:
        """Where the construct around an occurrence of a literal at ``hit`` starts (not
        before ``position``), or -1 when it is none."""
        return hit

    def find_other(self, buf: bytes, position: int) -> int:
        raise NotImplementedError

    def locate(self, buf: bytes, start: int) -> Result:
        raise NotImplementedError


_JSON_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_JSON_TOKEN = re.compile(
    rb'[ \t\r\n]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|([{}\[\]:,])|([^ \t\r\n{}\[\]:,"]+))', re.DOTALL
)


class _JsonFinder(Finder):
    literals = (b'"BulkDataURI"', b'"00081190"', b'"0040E010"', b'"0040e010"')
    max_opener = _MAX_KEY + 64

    def find_other(self, buf: bytes, position: int) -> int:
        """The string around the next escape: it may be an escaped key (strings are decoded
        only there, never on the common path)."""
        escape = buf.find(b"\\", position)
        while escape >= 0:
            quote = buf.rfind(b'"', max(position, escape - _MAX_KEY), escape)
            if quote >= 0:
                return quote
            escape = buf.find(b"\\", escape + 2)
        return -1

    def locate(self, buf: bytes, start: int) -> Result:
        string = _JSON_STRING_LITERAL.match(buf, start)
        if string is None:
            # Keys are short: a string still open after a KiB is a value, not a key.
            return NEED_MORE if len(buf) - start <= _MAX_KEY else None
        key_end = string.end()
        colon = _JSON_COLON.match(buf, key_end)
        if colon is None or colon.end() == len(buf):
            return NEED_MORE if not buf[key_end:].strip() or colon else Located(key_end)
        raw_key = buf[start + 1 : key_end - 1]
        try:
            key = JSON_STRING.decode(raw_key) if b"\\" in raw_key else raw_key.decode()
        except ValueError:
            return Located(key_end)
        position = colon.end()
        if key == "BulkDataURI":
            value = _JSON_STRING_LITERAL.match(buf, position)
            if value is None:
                return NEED_MORE if buf[position : position + 1] == b'"' else Located(position)
            return Located(value.end(), ((position + 1, value.end() - 1, JSON_STRING),))
        if key.upper() in URL_TAGS:
            return _json_values(buf, position)
        return Located(key_end)


def _json_values(buf: bytes, position: int) -> Result:
    """The strings of the ``Value`` array of the attribute object starting at ``position``."""
    if buf[position : position + 1] != b"{":
        return Located(position)
    stack: list[bytes] = []
    member = candidate = ""
    values: list[tuple[int, int, Codec]] = []
    index = position
    while True:
        token = _JSON_TOKEN.match(buf, index)
        if token is None or token.end() == len(buf):
            return NEED_MORE
        index = token.end()
        text, punctuation, _ = token.groups()
        if punctuation is not None:
            if punctuation in b"{[":
                stack.append(punctuation)
            elif punctuation in b"}]":
                if not stack:
                    return Located(token.start(2))
                stack.pop()
                if not stack:
                    return Located(index, tuple(values))
            elif punctuation == b":" and len(stack) == 1:
                member = candidate
        elif text is not None:
            if len(stack) == 1:
                try:
                    candidate = JSON_STRING.decode(text[1:-1])
                except ValueError:
                    candidate = ""
            elif stack == [b"{", b"["] and member == "Value":
                values.append((token.start(1) + 1, token.end(1) - 1, JSON_STRING))
        if not stack:
            return Located(index)


_NAME = rb"(?:[A-Za-z_][\w.-]*:)?"
_ATTRIBUTE = re.compile(rb"""[ \t\r\n]+([^ \t\r\n=/>]+)[ \t\r\n]*=[ \t\r\n]*("[^"]*"|'[^']*')""")
_TAG_END = re.compile(rb"[ \t\r\n]*(/?)>")
_ELEMENT_END = re.compile(rb"</" + _NAME + rb"DicomAttribute[ \t\r\n]*>")
_VALUE = re.compile(
    rb"<"
    + _NAME
    + rb"""Value(?:[ \t\r\n]+[^ \t\r\n=/>]+[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*'))*"""
    rb"[ \t\r\n]*>([^<]*)</" + _NAME + rb"Value[ \t\r\n]*>"
)


class _XmlFinder(Finder):
    _opener = re.compile(
        rb"<" + _NAME + rb"(BulkData(?=[ \t\r\n/>])|DicomAttribute(?="
        rb"""(?:[ \t\r\n]+[^ \t\r\n=/>]+[ \t\r\n]*=[ \t\r\n]*(?:"[^"]*"|'[^']*'))*?"""
        rb"""[ \t\r\n]+(?:[A-Za-z_][\w.-]*:)?tag[ \t\r\n]*=[ \t\r\n]*["']"""
        rb"""(?:00081190|0040[Ee]010|[^"'<]*&)))"""
    )
    max_opener = 1100

    literals = (b"BulkData", b"00081190", b"0040E010", b"0040e010")

    def start_of(self, buf: bytes, hit: int, position: int) -> int:
        """The start tag around ``hit``, if it is one of ours (the regex says)."""
        tag = buf.rfind(b"<", max(position, hit - self.max_opener), hit)
        return tag if tag >= 0 and self._opener.match(buf, tag) else -1

    def find_other(self, buf: bytes, position: int) -> int:
        """A start tag with a reference in it: perhaps an escaped ``tag`` value."""
        reference = buf.find(b"&", position)
        while reference >= 0:
            if (start := self.start_of(buf, reference, position)) >= 0:
                return start
            reference = buf.find(b"&", reference + 1)
        return -1

    def locate(self, buf: bytes, start: int) -> Result:
        opened = self._opener.match(buf, start)
        if opened is None:
            return None
        attributes, end, closed = _start_tag(buf, opened.end())
        if end < 0:
            return NEED_MORE if end == -1 else Located(opened.end())
        if opened.group(1) == b"BulkData":
            values = tuple(
                (s + 1, e - 1, _XML_ATTRIBUTE[buf[s : s + 1]])
                for name, s, e in attributes
                if name.rpartition(b":")[2].lower() == b"uri"
            )
            return Located(end, values)
        tag = next(
            (buf[s + 1 : e - 1] for n, s, e in attributes if n.rpartition(b":")[2] == b"tag"), b""
        )
        try:
            decoded = XML_TEXT.decode(tag).upper()
        except ValueError:
            decoded = ""
        if decoded not in URL_TAGS or closed:
            return Located(end)
        element_end = _ELEMENT_END.search(buf, end)
        if element_end is None:
            return NEED_MORE
        texts = tuple(
            (value.start(1), value.end(1), XML_TEXT)
            for value in _VALUE.finditer(buf, end, element_end.start())
        )
        return Located(element_end.end(), texts)


def _start_tag(buf: bytes, index: int) -> tuple[list[tuple[bytes, int, int]], int, bool]:
    """Attributes ``(name, start, end)`` (the span includes the quotes) of a start tag whose
    name ends at ``index``, the index after its ``>``, and whether it was ``/>``. The index is
    -1 when the tag does not end in ``buf``, -2 when it is not well formed."""
    attributes = []
    while True:
        attribute = _ATTRIBUTE.match(buf, index)
        if attribute is None:
            break
        attributes.append((attribute.group(1), attribute.start(2), attribute.end(2)))
        index = attribute.end()
    end = _TAG_END.match(buf, index)
    if end is not None:
        return attributes, end.end(), bool(end.group(1))
    close = buf.find(b">", index)
    # No ">" yet, or one inside an attribute value that has not ended: wait for more.
    pending = close < 0 or buf.count(b'"', index, close) % 2 or buf.count(b"'", index, close) % 2
    return attributes, (-1 if pending else -2), False


JSON_FIELDS: Final[Finder] = _JsonFinder()
XML_FIELDS: Final[Finder] = _XmlFinder()
