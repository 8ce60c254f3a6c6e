"""Every spelling of a base URL in the raw bytes of a JSON or XML document, as one regex.

A document can name ``http://pacs:8042/dicom-web/`` in many ways that a parser reads as the
same URL. :func:`spelling_of` builds a bytes pattern that matches all of those this gateway
recognises, directly in the document's bytes — no decoding, so a match is a byte span that
can be replaced in place:

* the document's escapes for any character: JSON ``\\uXXXX`` (hex digits in either case) and
  ``\\/``; XML decimal and hexadecimal character references with up to
  :data:`MAX_REF_ZEROS` leading zeros, and the predefined entities;
* the URL's own equivalences: scheme and host letter case, the host or path letters
  percent-encoded, an omitted, explicit, empty or zero-padded default port, a zero-padded
  port, a trailing dot on the host, userinfo, a scheme-less ``//host…`` reference, and
  backslashes for slashes (browsers accept them in http(s) URLs);
* the base path in another letter case: not the same URL by RFC 3986, but the same resource
  for many sources, and the host must not leak either way;
* the base path with or without its final ``/`` (without it only at the end of a path).

``PLAIN`` is for text that is already decoded (header values).

The pattern is bounded: :attr:`Spelling.max_length` is the longest byte span it can match,
so a stream needs to hold back only that many bytes. Relative references are not spellings
of the base; they are a matter of where a value sits (:mod:`gateway.protocols.xcwado.metafields`).
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.protocols.xcwado.border import SourceBase
from routing.urls import DEFAULT_PORTS

__all__ = ["MAX_REF_ZEROS", "Spelling", "Syntax", "spelling_of"]

MAX_REF_ZEROS = 32
"""Leading zeros accepted in an XML character reference (``&#x0002F;``); more is refused
by the rewriter rather than let through unrecognised."""

_MAX_PORT_ZEROS = 8
_MAX_USERINFO = 64
_HEX = "0123456789abcdef"
_PATH_CHAR = r"[A-Za-z0-9._~!$'()*+,;=:@%-]"  # a literal that would continue a path
_XML_ENTITIES = {"&": "amp", "<": "lt", ">": "gt", '"': "quot", "'": "apos"}


class Syntax(enum.Enum):
    JSON = "json"
    XML = "xml"
    PLAIN = "plain"


@dataclass(frozen=True, slots=True)
class Spelling:
    """``pattern`` matches a base in any spelling; the group ``s{i}`` is set when the match
    ended with the base path's final slash (else the public prefix goes without its own)."""

    pattern: re.Pattern[bytes]
    max_length: int
    groups: tuple[str, ...]

    def keeps_slash(self, match: re.Match[bytes]) -> bool:
        return any(match.group(name) is not None for name in self.groups)


class _Piece:
    """A regex fragment and the most bytes it can match."""

    __slots__ = ("length", "source")

    def __init__(self, source: str, length: int) -> None:
        self.source = source
        self.length = length

    def __add__(self, other: _Piece) -> _Piece:
        return _Piece(self.source + other.source, self.length + other.length)


def _either(pieces: Iterable[_Piece]) -> _Piece:
    items = list(pieces)
    if len(items) == 1:
        return items[0]
    return _Piece("(?:" + "|".join(p.source for p in items) + ")", max(p.length for p in items))


def _optional(piece: _Piece) -> _Piece:
    return _Piece(f"(?:{piece.source})?", piece.length)


def _repeat(piece: _Piece, most: int) -> _Piece:
    return _Piece(f"(?:{piece.source}){{0,{most}}}", piece.length * most)


def _hex_digit(digit: str) -> str:
    return f"[{digit}{digit.upper()}]" if digit.isalpha() else digit


def _char(chars: Iterable[str], syntax: Syntax) -> _Piece:
    """One character from ``chars``, literally or as any escape ``syntax`` has for it."""
    options: list[_Piece] = []
    for char in sorted(set(chars)):
        code = ord(char)
        if syntax is Syntax.JSON:
            if char not in '"\\' and code >= 0x20:
                options.append(_Piece(re.escape(char), len(char.encode())))
            hex_code = "".join(_hex_digit(d) for d in f"{code:04x}")
            options.append(_Piece(r"\\u" + hex_code, 6))
            if char in '/"\\':
                options.append(_Piece(re.escape("\\" + char), 2))
        elif syntax is Syntax.XML:
            if char not in "&<":
                options.append(_Piece(re.escape(char), len(char.encode())))
            decimal, hexadecimal = str(code), "".join(_hex_digit(d) for d in f"{code:x}")
            options.append(
                _Piece(f"&#0{{0,{MAX_REF_ZEROS}}}{decimal};", 3 + MAX_REF_ZEROS + len(decimal))
            )
            options.append(
                _Piece(
                    f"&#[xX]0{{0,{MAX_REF_ZEROS}}}{hexadecimal};",
                    4 + MAX_REF_ZEROS + len(f"{code:x}"),
                )
            )
            if char in _XML_ENTITIES:
                options.append(_Piece(f"&{_XML_ENTITIES[char]};", len(_XML_ENTITIES[char]) + 2))
        else:
            options.append(_Piece(re.escape(char), len(char.encode())))
    return _either(options)


def _percent(variants: Iterable[str], syntax: Syntax) -> _Piece:
    """``%XX`` for one of ``variants`` (one character in its letter cases), hex in any case,
    each of the three characters itself possibly escaped."""
    codes = [f"{ord(v):02x}" for v in variants]
    high = {c[0] for c in codes} | {c[0].upper() for c in codes}
    low = {c[1] for c in codes} | {c[1].upper() for c in codes}
    return _char("%", syntax) + _char(high, syntax) + _char(low, syntax)


def _host_char(char: str, syntax: Syntax) -> _Piece:
    cases = {char.lower(), char.upper()}
    if char in "[]:":
        return _char(char, syntax)
    return _either([_char(cases, syntax), _percent(cases, syntax)])


def _path_char(char: str, syntax: Syntax) -> _Piece:
    if char == "/":
        return _either([_char("/\\", syntax), _percent("/", syntax)])
    if char.isascii():
        # Either letter case: many sources (IIS, say) ignore it, and an upper-case spelling
        # left alone would still name the source's host.
        cases = {char.lower(), char.upper()}
        return _either([_char(cases, syntax), _percent(cases, syntax)])
    return _char(char, syntax)


def _userinfo_char(syntax: Syntax) -> _Piece:
    if syntax is Syntax.JSON:
        return _Piece(r'(?:[^"\\/?#@\s<>\[\]]|\\u[0-9a-fA-F]{4}|\\["bfnrt])', 6)
    if syntax is Syntax.XML:
        return _Piece(
            r"""(?:[^"'&<>/\\?#@\s\[\]]|&#[0-9]{1,40};|&#[xX][0-9a-fA-F]{1,40};|&[A-Za-z]{2,6};)""",
            44,
        )
    return _Piece(r"""[^"'<>/\\?#@\s\[\]]""", 1)


def _base(base: SourceBase, index: int, syntax: Syntax) -> _Piece:
    # Either scheme: a source on an explicit port is the same server whatever scheme its
    # documents claim (a TLS terminator's view of it, say). Without a scheme, not right
    # after a literal ":" — that would be another scheme's URL, not a network-path reference.
    schemes = _either(
        _concat(_char({c, c.upper()}, syntax) for c in scheme) for scheme in ("https", "http")
    )
    slash = _char("/\\", syntax)
    piece = _either([schemes + _char(":", syntax), _Piece("(?<!:)", 0)]) + slash + slash
    piece = piece + _optional(_repeat(_userinfo_char(syntax), _MAX_USERINFO) + _char("@", syntax))
    host = f"[{base.host}]" if ":" in base.host else base.host
    piece = piece + _concat(_host_char(c, syntax) for c in host) + _optional(_char(".", syntax))
    zeros = _repeat(_char("0", syntax), _MAX_PORT_ZEROS)
    if base.port is None:
        default = _concat(_char(d, syntax) for d in str(DEFAULT_PORTS[base.scheme]))
        piece = piece + _optional(_char(":", syntax) + _optional(zeros + default))
    else:
        piece = (
            piece + _char(":", syntax) + zeros + _concat(_char(d, syntax) for d in str(base.port))
        )
    piece = piece + _concat(_path_char(c, syntax) for c in base.path[:-1])
    final = _path_char("/", syntax)
    return piece + _Piece(f"(?:(?P<s{index}>{final.source})|(?!{_PATH_CHAR}))", final.length)


def _concat(pieces: Iterable[_Piece]) -> _Piece:
    out = _Piece("", 0)
    for piece in pieces:
        out = out + piece
    return out


@functools.lru_cache(maxsize=256)
def spelling_of(bases: tuple[SourceBase, ...], syntax: Syntax) -> Spelling:
    """The pattern for any of ``bases`` in ``syntax``; cached (a relay builds it per answer)."""
    pieces = [_base(base, index, syntax) for index, base in enumerate(bases)]
    combined = _either(pieces)
    return Spelling(
        pattern=re.compile(combined.source.encode()),
        max_length=combined.length,
        groups=tuple(f"s{i}" for i in range(len(bases))),
    )
