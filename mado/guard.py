"""Limits a manifest must stay within before any parser builds objects from it.

A manifest is small, but its bytes can ask for much more: a deflated KOS (transfer syntax
1.2.840.10008.1.2.1.99, PS3.5 §A.5) of 1 MB can inflate to gigabytes, sequences nested a
thousand deep send pydicom's recursive reader past the interpreter's stack, and a JSON array
of millions of values becomes millions of objects. The checks here run on the raw bytes, in
time linear in their length and with memory bounded by :class:`ParseLimits`:

* :func:`guard_dicom` reads the file meta itself, inflates a deflated data set with a
  streaming decompressor that stops at ``max_inflated_bytes`` (the result is handed on as
  Explicit VR Little Endian, so pydicom never inflates anything), then walks the data set's
  element headers — values are skipped, never copied — counting elements and sequence
  nesting;
* :func:`guard_json` counts the value separators of a JSON document (an upper bound on its
  values) with ``bytes.count``; nesting is capped by orjson itself at 1024 levels, and the
  readers never recurse into JSON.

What the guard cannot bound — time and memory of the parse itself — the worker process of
:mod:`mado.sandbox` bounds. Raises :class:`~mado.errors.ManifestTooComplex`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR

from mado.errors import ManifestTooComplex

__all__ = ["DEFAULT_LIMITS", "ParseLimits", "guard_dicom", "guard_json"]

_PREAMBLE = 132  # 128-byte preamble and "DICM" (PS3.10 §7.1)
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_ITEM, _ITEM_END, _SEQUENCE_END = 0xE000, 0xE00D, 0xE0DD
_DEFLATED = "1.2.840.10008.1.2.1.99"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_BE = "1.2.840.10008.1.2.2"
_EXPLICIT_LE = b"1.2.840.10008.1.2.1\x00"
_INFLATE_STEP = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ParseLimits:
    """How much a manifest may ask of its reader.

    ``max_depth`` counts nested DICOM sequences (a MADO KOS needs about six);
    ``max_elements`` bounds DICOM data elements and JSON values alike (a 5,000-instance
    manifest has some 60,000); ``timeout_s`` and ``memory_bytes`` bound one parse in the
    worker process (wall time, and address space beyond the worker's own at start).
    """

    max_inflated_bytes: int = 64 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 500_000
    timeout_s: float = 10.0
    memory_bytes: int = 768 * 1024 * 1024


DEFAULT_LIMITS = ParseLimits()


def guard_json(data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> None:
    """Refuse a JSON document with more values than ``max_elements`` (counted from above)."""
    values = data.count(b",") + data.count(b":") + data.count(b"[") + 1
    if values > limits.max_elements:
        raise ManifestTooComplex(
            f"the JSON document has too many values (more than {limits.max_elements:,})"
        )


def guard_dicom(data: bytes, limits: ParseLimits = DEFAULT_LIMITS) -> bytes:
    """Check a DICOM Part 10 file against ``limits``; returns the bytes pydicom should read.

    A deflated data set comes back inflated, under a file meta that says Explicit VR Little
    Endian. A file whose meta or element headers cannot be followed is returned unchanged:
    pydicom's reader reports what is wrong with it, and the walk never reaches beyond the
    end of the data, so nothing it skips can cost memory.
    """
    meta = _file_meta(data)
    if meta is None:
        return data
    end, syntax, elements = meta
    body = memoryview(data)[end:]
    if syntax == _DEFLATED:
        inflated = _inflate(body, limits.max_inflated_bytes)
        data = _meta_bytes(data[:_PREAMBLE], elements) + inflated
        body = memoryview(inflated)
        syntax = _EXPLICIT_LE.rstrip(b"\x00").decode()
    _walk(body, limits, implicit=syntax == _IMPLICIT_LE, little=syntax != _EXPLICIT_BE)
    return data


def _file_meta(data: bytes) -> tuple[int, str, list[tuple[int, bytes, bytes]]] | None:
    """End offset of the group 0002 elements, the transfer syntax, and the elements."""
    pos, elements, syntax = _PREAMBLE, [], ""
    while pos + 8 <= len(data):
        group, elem, vr = struct.unpack_from("<HH2s", data, pos)
        if group != 0x0002:
            break
        if vr in _LONG_VRS:
            if pos + 12 > len(data):
                return None
            (length,) = struct.unpack_from("<I", data, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            start = pos + 8
        if length == _UNDEFINED or start + length > len(data):
            return None
        value = data[start : start + length]
        if elem == 0x0010:
            syntax = value.rstrip(b"\x00 ").decode("ascii", "replace")
        if elem != 0x0000:
            elements.append((elem, vr, value))
        pos = start + length
    return pos, syntax, elements


def _meta_bytes(preamble: bytes, elements: list[tuple[int, bytes, bytes]]) -> bytes:
    """The file meta again, with the transfer syntax now Explicit VR Little Endian."""
    encoded = b"".join(
        _explicit(0x0002, elem, vr, _EXPLICIT_LE if elem == 0x0010 else value)
        for elem, vr, value in elements
    )
    length = _explicit(0x0002, 0x0000, b"UL", struct.pack("<I", len(encoded)))
    return preamble + length + encoded


def _explicit(group: int, elem: int, vr: bytes, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _inflate(deflated: memoryview, cap: int) -> bytes:
    """Raw deflate (RFC 1951, as PS3.5 §A.5 specifies) inflated step by step up to ``cap``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    pending = bytes(deflated)
    try:
        while pending and not inflater.eof:
            out += inflater.decompress(pending, _INFLATE_STEP)
            pending = inflater.unconsumed_tail
            if len(out) > cap:
                raise ManifestTooComplex(
                    f"the deflated data set inflates to more than {cap // (1024 * 1024)} MB"
                )
        if not inflater.eof:
            out += inflater.flush()
    except zlib.error:
        return bytes(out)  # corrupt from here on: pydicom reports the truncated data set
    if len(out) > cap:
        raise ManifestTooComplex(
            f"the deflated data set inflates to more than {cap // (1024 * 1024)} MB"
        )
    return bytes(out)


@dataclass(frozen=True, slots=True)
class _Open:
    """A sequence or item being walked: where it ends (None: undefined length)."""

    end: int | None
    sequence: bool
    implicit: bool
    fragments: bool = False  # encapsulated pixel data: its items are opaque bytes


def _walk(body: memoryview, limits: ParseLimits, *, implicit: bool, little: bool) -> None:
    """Count elements and sequence nesting of a data set without reading any value."""
    _Walker(body, limits, implicit=implicit, little=little).run()


class _Walker:
    """One pass over element headers; ``stack`` holds the open sequences and items."""

    def __init__(self, body: memoryview, limits: ParseLimits, *, implicit: bool, little: bool):
        order = "<" if little else ">"
        self.header = struct.Struct(order + "HH")
        self.u16, self.u32 = struct.Struct(order + "H"), struct.Struct(order + "I")
        self.body, self.limits, self.implicit = body, limits, implicit
        self.pos = self.depth = self.elements = 0
        self.stack: list[_Open] = []

    def run(self) -> None:
        size = len(self.body)
        while True:
            self._close_finished()
            if self.pos + 8 > size:
                return
            group, elem = self.header.unpack_from(self.body, self.pos)
            if group == 0xFFFE:
                self._delimiter(elem)
            elif not self._element(group, elem):
                return

    def _close_finished(self) -> None:
        while self.stack:
            end = self.stack[-1].end
            if end is None or self.pos < end:
                return
            self.depth -= self.stack.pop().sequence

    def _delimiter(self, elem: int) -> None:
        stack = self.stack
        (length,) = self.u32.unpack_from(self.body, self.pos + 4)
        self.pos += 8
        if elem == _ITEM and stack and stack[-1].fragments:
            self.pos += 0 if length == _UNDEFINED else length
        elif elem == _ITEM:
            implicit = stack[-1].implicit if stack else self.implicit
            stack.append(_Open(end=_end(self.pos, length), sequence=False, implicit=implicit))
        elif elem == _ITEM_END and stack and not stack[-1].sequence:
            stack.pop()
        elif elem == _SEQUENCE_END:
            if stack and not stack[-1].sequence:
                stack.pop()
            if stack:
                self.depth -= stack.pop().sequence

    def _element(self, group: int, elem: int) -> bool:
        """Step over one element (into it, when it opens a container); False: cannot follow."""
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise ManifestTooComplex(
                "the DICOM data set has too many elements "
                f"(more than {self.limits.max_elements:,})"
            )
        implicit = self.stack[-1].implicit if self.stack else self.implicit
        vr: bytes | None = None
        if implicit:
            (length,) = self.u32.unpack_from(self.body, self.pos + 4)
            self.pos += 8
        else:
            vr = bytes(self.body[self.pos + 4 : self.pos + 6])
            if vr in _LONG_VRS:
                if self.pos + 12 > len(self.body):
                    return False
                (length,) = self.u32.unpack_from(self.body, self.pos + 8)
                self.pos += 12
            else:
                (length,) = self.u16.unpack_from(self.body, self.pos + 6)
                self.pos += 8
        opened = _opens(vr, group, elem, length)
        if opened is None:
            if length == _UNDEFINED:
                return False  # pydicom will say what is wrong
            self.pos += length
            return True
        sequence, items_implicit, fragments = opened
        if sequence:
            self.depth += 1
            if self.depth > self.limits.max_depth:
                raise ManifestTooComplex(
                    "the DICOM data set nests sequences too deep "
                    f"(more than {self.limits.max_depth} levels)"
                )
        self.stack.append(
            _Open(
                end=_end(self.pos, length),
                sequence=sequence,
                implicit=implicit if items_implicit is None else items_implicit,
                fragments=fragments,
            )
        )
        return True


def _end(pos: int, length: int) -> int | None:
    return None if length == _UNDEFINED else pos + length


def _opens(
    vr: bytes | None, group: int, elem: int, length: int
) -> tuple[bool, bool | None, bool] | None:
    """``(sequence, items implicit or None to inherit, fragments)`` when the element opens a
    container, as pydicom's reader would treat it; ``None`` when it is a plain value."""
    if vr == b"SQ":
        return True, None, False
    if vr in (b"OB", b"OW") and length == _UNDEFINED:
        return False, False, True
    # Implicit VR (or UN): a sequence when the dictionary says so or the length is undefined;
    # a sequence that came as UN has implicit VR little endian items.
    if (vr is None or vr == b"UN") and (length == _UNDEFINED or _dictionary_sequence(group, elem)):
        return True, (True if vr == b"UN" else None), False
    return None


def _dictionary_sequence(group: int, elem: int) -> bool:
    try:
        return bool(dictionary_VR((group << 16) | elem) == "SQ")
    except KeyError:
        return False
