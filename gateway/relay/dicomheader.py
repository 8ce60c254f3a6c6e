"""Reading who and what a DICOM object is about from the first bytes of its Part 10 encoding.

Only the identifiers the audit trail needs are read — SOP Class and Instance UIDs (0008,0016/
0018), Patient's Name, ID and Issuer (0010,0010/0020/0021), Study and Series Instance UIDs
(0020,000D/000E) — and reading stops at the first element after (0020,000E), so a prefix of
a few KiB is enough for ordinary objects. PS3.10 §7.1 (preamble, ``DICM``, File Meta group in
Explicit VR Little Endian); PS3.5 §7.1 (data element encodings), §7.5 (sequences of
undefined length). Explicit and Implicit VR Little Endian are understood — DICOMweb never
sends Big Endian (PS3.18 §8.7.3) — deflated and unknown encodings are not.

:func:`read_identity` never raises on bad input: it returns ``None`` when the prefix is not
a Part 10 object it can read, and whatever it found when the prefix ends early.
"""

from __future__ import annotations

import struct

from gateway.exchange import InstanceSeen

__all__ = ["read_header", "read_identity", "read_transfer_syntax"]

_IMPLICIT_LE = "1.2.840.10008.1.2"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"
_DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LAST_WANTED = 0x0020000E
_PIXEL_DATA = 0x7FE00010

_WANTED = {
    0x00080005: "charset",
    0x00080016: "sop_class_uid",
    0x00080018: "sop_instance_uid",
    0x00100010: "patient_name",
    0x00100020: "patient_id",
    0x00100021: "patient_id_issuer",
    0x0020000D: "study_uid",
    0x0020000E: "series_uid",
}

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TAG = struct.Struct("<HH")
# Element header: tag, then explicit VR and 16-bit length, or (implicit) a 32-bit length.
_EXPLICIT_HEAD = struct.Struct("<HH2sH")
_IMPLICIT_HEAD = struct.Struct("<HH0sI")  # "0s": no VR, so both give four values


class _Truncated(Exception):
    """The prefix ended inside an element: keep what was read so far."""


def read_identity(prefix: bytes) -> InstanceSeen | None:
    """Identity of the object whose Part 10 encoding starts with ``prefix``, or None."""
    return read_header(prefix)[0]


def read_transfer_syntax(prefix: bytes) -> str | None:
    """The File Meta Transfer Syntax UID (0002,0010) of the object ``prefix`` starts, or None
    when ``prefix`` is not a Part 10 object or ends before the File Meta group does."""
    if prefix[128:132] != b"DICM":
        return None
    try:
        _, syntax = _file_meta(prefix, 132)
    except (_Truncated, struct.error, ValueError):
        return None
    return syntax


def read_header(prefix: bytes, *, extent: bool = True) -> tuple[InstanceSeen | None, int | None]:
    """Identity, and where native Pixel Data ends when the prefix reaches its element header.

    The second value lets a scanner skip the pixels without searching them; it is None
    when Pixel Data is encapsulated, absent, or beyond the prefix, or ``extent`` is false.
    """
    if prefix[128:132] != b"DICM":
        return None, None
    raw: dict[str, bytes] = {}
    pixels_end = None
    try:
        position, syntax = _file_meta(prefix, 132)
        if syntax == _BIG_ENDIAN or syntax in _DEFLATED:
            return None, None
        pixels_end = _top_level(
            prefix, position, explicit=syntax != _IMPLICIT_LE, found=raw, extent=extent
        )
    except _Truncated:
        pass
    except (struct.error, ValueError):
        return None, None
    return _identity(raw), pixels_end


def _top_level(
    data: bytes, position: int, *, explicit: bool, found: dict[str, bytes], extent: bool
) -> int | None:
    """One pass over the top-level elements: the wanted values into ``found``, then (with
    ``extent``) on to Pixel Data, whose end offset is returned.

    This runs once per relayed instance, so it is written as one loop with one ``unpack``
    per element header and no call per element.
    """
    size = len(data)
    head = _EXPLICIT_HEAD.unpack_from if explicit else _IMPLICIT_HEAD.unpack_from
    while position + 8 <= size:
        group, element, vr, length = head(data, position)
        tag = group << 16 | element
        start = position + 8
        if explicit and vr in _LONG_VRS:
            if position + 12 > size:
                break
            length = _U32.unpack_from(data, start)[0]
            start += 4
        if tag == _PIXEL_DATA:
            return None if length == _UNDEFINED else start + length
        if tag > _LAST_WANTED and not extent:
            return None
        if length == _UNDEFINED:
            position = _skip_undefined(data, start, explicit=explicit)
            continue
        position = start + length
        if tag in _WANTED:
            if position > size:
                break
            found[_WANTED[tag]] = data[start:position]
    raise _Truncated


def _file_meta(data: bytes, position: int) -> tuple[int, str]:
    syntax = "1.2.840.10008.1.2.1"
    while position + 8 <= len(data):
        group, element = _TAG.unpack_from(data, position)
        if group != 0x0002:
            return position, syntax
        value, position = _element(data, position, explicit=True)
        if element == 0x0010 and value is not None:
            syntax = _text(value) or syntax
    raise _Truncated


def _item(data: bytes, position: int, *, explicit: bool) -> int:
    """Pass over the elements of an item of undefined length; the position after its end."""
    while True:
        if position + 8 > len(data):
            raise _Truncated
        group, element = _TAG.unpack_from(data, position)
        if group << 16 | element == _ITEM_END:
            return position + 8
        _, position = _element(data, position, explicit=explicit)


def _element(data: bytes, position: int, *, explicit: bool) -> tuple[bytes | None, int]:
    """One element at ``position``: its value (None for a sequence) and the next position."""
    vr = data[position + 4 : position + 6] if explicit else b""
    if explicit and vr in _LONG_VRS:
        length = _U32.unpack_from(data, position + 8)[0]
        start = position + 12
    elif explicit:
        length = _U16.unpack_from(data, position + 6)[0]
        start = position + 8
    else:
        length = _U32.unpack_from(data, position + 4)[0]
        start = position + 8
    if length == _UNDEFINED:
        return None, _skip_undefined(data, start, explicit=explicit)
    end = start + length
    if end > len(data):
        raise _Truncated
    return data[start:end], end


def _skip_undefined(data: bytes, position: int, *, explicit: bool) -> int:
    """Skip items until the sequence delimiter (PS3.5 §7.5.2); returns the position after it."""
    while True:
        if position + 8 > len(data):
            raise _Truncated
        group, element = _TAG.unpack_from(data, position)
        tag = group << 16 | element
        length = _U32.unpack_from(data, position + 4)[0]
        position += 8
        if tag == _SEQUENCE_END:
            return position
        if tag != _ITEM:
            raise ValueError("expected an item in a sequence of undefined length")
        if length == _UNDEFINED:
            position = _item(data, position, explicit=explicit)
        else:
            position += length


def _identity(raw: dict[str, bytes]) -> InstanceSeen:
    utf8 = b"ISO_IR 192" in raw.get("charset", b"")
    return InstanceSeen(
        sop_class_uid=_uid(raw.get("sop_class_uid")),
        sop_instance_uid=_uid(raw.get("sop_instance_uid")),
        study_uid=_uid(raw.get("study_uid")),
        series_uid=_uid(raw.get("series_uid")),
        patient_id=_text(raw.get("patient_id")),
        patient_id_issuer=_text(raw.get("patient_id_issuer")),
        patient_name=_text(raw.get("patient_name"), utf8=utf8),
    )


def _uid(value: bytes | None) -> str | None:
    text = _text(value)
    return text.rstrip("\x00") if text else None


def _text(value: bytes | None, *, utf8: bool = False) -> str | None:
    if value is None:
        return None
    text = value.decode("utf-8" if utf8 else "latin-1", errors="replace").strip(" \x00")
    return text or None
