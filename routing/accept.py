"""Accept media ranges, and the transfer syntaxes a gateway never requests over DICOMweb.

Checklist item 23 (spec-digest §3.2; PS3.18 §8.7.3.5.2): Implicit VR Little Endian
(``1.2.840.10008.1.2``) and Explicit VR Big Endian (``1.2.840.10008.1.2.2``) are not
available via DICOMweb, so no outbound request may ask for them. Decisions:

* **Accept header** — ours to build (only allow-listed headers go out): a media range naming
  one of them is dropped; when no range with q > 0 is left, the request is refused with
  :class:`~routing.errors.UnsupportedTransferSyntax` (406) before any upstream is contacted.
  An Accept with nothing to drop is passed as the client sent it (checklist item 20).
* **Query** — forwarded byte for byte (checklist item 11), so never edited: an ``accept``
  (PS3.18 §8.3.3.1) or ``transfer-syntax`` query parameter naming one of them refuses the
  whole request (406), even when it lists other ranges too.

A range "names" a transfer syntax however it is spelt: parameter names in any case,
whitespace around ``=``, quoted or with quoted-pairs, an ``urn:oid:`` prefix, the parameter
given twice, RFC 2231 ``transfer-syntax*=``, or the text hidden inside another parameter's
quoted value — a range is judged by every ``transfer-syntax`` assignment found anywhere in
it, so no server's reading of it can find one that this one missed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote_plus

from routing.errors import UnsupportedTransferSyntax
from routing.media import media_or_none

__all__ = [
    "FORBIDDEN_TRANSFER_SYNTAXES",
    "check_query",
    "names_forbidden_syntax",
    "outbound_accept",
    "split_ranges",
]

FORBIDDEN_TRANSFER_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"})

_NOISE = re.compile(r'[\s"\\]')
_ASSIGNMENT = re.compile(r"transfer-?syntax\*?=(?:[a-z0-9_-]*'[a-z0-9_-]*')?([^;,]*)")
_WEIGHT = re.compile(r"[0-9.]+")
_QUERY_NAMES = frozenset({"accept", "transfer-syntax", "transfersyntax"})


def split_ranges(value: str) -> list[str]:
    """The media ranges of one Accept value: split on commas outside quoted strings.

    An unterminated quoted string runs to the end of the value (one range). Empty ranges
    (``a, , b``) are left out; each range is stripped of surrounding whitespace.
    """
    ranges: list[str] = []
    start = 0
    quoted = escaped = False
    for index, char in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            ranges.append(value[start:index])
            start = index + 1
    ranges.append(value[start:])
    return [stripped for part in ranges if (stripped := part.strip())]


def names_forbidden_syntax(media_range: str) -> bool:
    """Whether any ``transfer-syntax`` assignment in the range names a forbidden syntax."""
    # Deliberately looser than routing.media: a server may read a range otherwise than RFC
    # 9110 does, so every spelling any reading could find counts (module docstring).
    flat = _NOISE.sub("", media_range).lower()
    return any(
        value.removeprefix("urn:oid:") in FORBIDDEN_TRANSFER_SYNTAXES
        for value in _ASSIGNMENT.findall(flat)
    )


def outbound_accept(values: Sequence[str]) -> list[str]:
    """The Accept header values to send upstream, from the client's ``values``.

    ``[]`` when the client gave no media range (the caller adds the default); ``values``
    unchanged when no range names a forbidden syntax; otherwise the remaining ranges as one
    value. Raises :class:`UnsupportedTransferSyntax` when ranges were given and none with
    q > 0 remains.
    """
    ranges = [r for value in values for r in split_ranges(value)]
    if not ranges:
        return []
    kept = [r for r in ranges if not names_forbidden_syntax(r)]
    if len(kept) == len(ranges):
        return list(values)
    if not any(_quality(r) > 0 for r in kept):
        raise UnsupportedTransferSyntax("Accept header")
    return [", ".join(kept)]


def check_query(raw_query: str) -> None:
    """Refuse a query whose ``accept`` or ``transfer-syntax`` parameter names a forbidden
    syntax (any spelling of the name; the value percent-decoded up to three times)."""
    for pair in raw_query.split("&"):
        name, _, value = pair.partition("=")
        if unquote_plus(name).strip().lower() not in _QUERY_NAMES:
            continue
        for _ in range(3):
            value = unquote_plus(value)
            if names_forbidden_syntax(f"transfer-syntax={value}") or any(
                names_forbidden_syntax(r) for r in split_ranges(value)
            ):
                raise UnsupportedTransferSyntax("accept query parameter")


def _quality(media_range: str) -> float:
    media = media_or_none(media_range)
    weight = None if media is None else media.param("q")
    try:
        return float(weight) if weight and _WEIGHT.fullmatch(weight) else 1.0
    except ValueError:
        return 1.0  # a malformed weight is no reason to refuse
