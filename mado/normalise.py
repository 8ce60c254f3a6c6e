"""Normalisation of the values real manifests contain, shared by both readers and writers.

What arrives in the wild (spec digest §1.3, §9 item 4; MADO checklist items 3-4):

* OIDs with a ``urn:oid:`` or ``oid:`` prefix, or bare; values that are not OIDs at all
  (``ACME`` in the IG example bundle). :func:`to_oid` gives an :class:`~routing.ids.Oid` or
  ``None``; callers report the ``None`` case.
* Retrieve URLs that are empty, or the FHIR placeholders ``http://notspecified`` /
  ``http://notapplicable``: :func:`to_url` returns ``None`` for "no URL".
* DICOM DA/TM/offset values and FHIR ``dateTime`` strings: converted both ways without losing
  precision; times are padded to whole seconds so a round trip is exact.

All functions are pure and never raise except :func:`to_uid`, which raises
:class:`~mado.errors.InvalidManifest` naming the attribute path.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydicom.dataset import Dataset

from mado.errors import InvalidManifest
from mado.vocab import PLACEHOLDER_ADDRESSES
from routing.errors import InvalidIdentifier
from routing.ids import Oid, Uid

__all__ = [
    "items_of",
    "fhir_date",
    "fhir_datetime",
    "split_fhir_datetime",
    "to_dicom_date",
    "to_dicom_time",
    "to_int",
    "to_offset",
    "to_oid",
    "to_text",
    "to_uid",
    "to_url",
]

_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_TIME = re.compile(r"(\d{2})(?::?(\d{2})(?::?(\d{2})(\.\d{1,6})?)?)?")
_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})")
_FHIR_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)(Z|[+-]\d{2}:\d{2})?)?"
)


def items_of(item: Dataset, keyword: str) -> Sequence[Dataset]:
    """The items of a sequence attribute; empty when it is absent."""
    value: Any = item.get(keyword)
    return value if value is not None else ()


def to_text(raw: object) -> str | None:
    """A stripped string, or ``None`` for absent, empty or whitespace-only values."""
    if raw is None:
        return None
    text = str(raw).strip()
    return text or None


def to_uid(raw: object, path: str) -> Uid:
    """A valid UID from ``raw`` (a ``urn:oid:`` prefix is accepted, as FHIR writes one).

    Raises :class:`InvalidManifest` naming ``path`` when the value is absent or invalid.
    """
    text = to_text(raw)
    if text is None:
        raise InvalidManifest(path, "UID is missing")
    try:
        return Uid(Oid(text))
    except InvalidIdentifier as exc:
        raise InvalidManifest(path, f"invalid UID {text[:80]!r} ({exc.reason})") from None


def to_oid(raw: object) -> Oid | None:
    """An OID with any ``urn:oid:``/``oid:`` prefix removed, or ``None`` when not an OID."""
    text = to_text(raw)
    if text is None:
        return None
    try:
        return Oid(text)
    except InvalidIdentifier:
        return None


def to_url(raw: object) -> str | None:
    """A Retrieve URL, or ``None`` when absent or a FHIR "no address" placeholder."""
    text = to_text(raw)
    if text is None:
        return None
    if text.lower().rstrip("/") in PLACEHOLDER_ADDRESSES:
        return None
    return text


_IS_MIN, _IS_MAX = -(2**31), 2**31 - 1  # DICOM IS (PS3.5 Table 6.2-1); US, FHIR integer fit


def to_int(raw: object) -> int | None:
    """An integer from a DICOM IS/US value or text; ``None`` when absent, not a number, or
    outside the range an IS value can hold (so every format can write it back)."""
    if raw is None or isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        value = int(raw)  # pydicom's IS is an int subclass
    else:
        text = to_text(raw)
        if text is None:
            return None
        try:
            value = int(float(text)) if "." in text else int(text)
        except (ValueError, OverflowError):  # not a number, or "1e999." (infinite)
            return None
    return value if _IS_MIN <= value <= _IS_MAX else None


def to_dicom_date(raw: object) -> str | None:
    """``YYYYMMDD`` from a DICOM DA or an ISO date; ``None`` when absent or malformed."""
    text = to_text(raw)
    if text is None:
        return None
    match = _DATE.fullmatch(text)
    return "".join(match.groups()) if match else None


def to_dicom_time(raw: object) -> str | None:
    """``HHMMSS[.ffffff]`` from a DICOM TM or an ISO time, padded to whole seconds."""
    text = to_text(raw)
    if text is None:
        return None
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    hours, minutes, seconds, fraction = match.groups()
    return f"{hours}{minutes or '00'}{seconds or '00'}{fraction or ''}"


def to_offset(raw: object) -> str | None:
    """``±HHMM`` from a DICOM offset, an ISO offset or ``Z``; ``None`` when malformed."""
    text = to_text(raw)
    if text is None:
        return None
    if text == "Z":
        return "+0000"
    match = _OFFSET.fullmatch(text)
    return "".join(match.groups()) if match else None


def fhir_date(dicom_date: str | None) -> str | None:
    """``YYYY-MM-DD`` from ``YYYYMMDD``."""
    if dicom_date is None or len(dicom_date) != 8:
        return None
    return f"{dicom_date[:4]}-{dicom_date[4:6]}-{dicom_date[6:]}"


def fhir_datetime(date: str | None, time: str | None, offset: str | None) -> str | None:
    """A FHIR ``dateTime`` from DICOM date, time and offset.

    FHIR requires a zone whenever a time is given; without an offset only the date is
    emitted (the time is lost, and the validator reports the missing offset, R+ §6.X.2.10).
    """
    day = fhir_date(date)
    if day is None:
        return None
    if time is None or offset is None:
        return day
    clock = f"{time[:2]}:{time[2:4]}:{time[4:]}"
    return f"{day}T{clock}{offset[:3]}:{offset[3:]}"


def split_fhir_datetime(raw: object) -> tuple[str | None, str | None, str | None]:
    """(``YYYYMMDD``, ``HHMMSS[.f]``, ``±HHMM``) from a FHIR ``dateTime``; Nones when malformed."""
    text = to_text(raw)
    if text is None:
        return None, None, None
    match = _FHIR_DATETIME.fullmatch(text)
    if match is None:
        return None, None, None
    day, clock, zone = match.groups()
    return to_dicom_date(day), to_dicom_time(clock), to_offset(zone)
