"""Media types: the one reader of Content-Type values and Accept media ranges.

Grammar (RFC 9110 §8.3.1 and §5.6, RFC 2045 §5.1)::

    media-type = type "/" subtype *( OWS ";" OWS [ parameter ] )
    parameter  = name "=" ( token / quoted-string )

Read leniently where servers are known to stray, strictly elsewhere:

* whitespace around ``=`` is accepted (``Transfer-Syntax = 1.2.840…``), and so are empty
  parameters (``a/b;;c=d``);
* an unquoted value may hold any visible character but ``;`` and ``"`` (servers write
  ``type=application/dicom``);
* type, subtype and parameter names are compared without regard to case, so they are kept in
  lower case; values keep their case, quoted-strings are unquoted (quoted-pairs resolved);
* anything else — a missing subtype, a control character, an unterminated quoted-string, text
  after a value — raises :class:`MediaTypeError`, never another exception.

:meth:`MediaType.__str__` writes the canonical spelling: ``type/subtype; name=value`` with a
value quoted when it is not a token, so ``parse_media_type(str(m)) == m``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from routing.errors import MediaTypeError

__all__ = ["MediaType", "MediaTypeError", "media_or_none", "parse_media_type"]

_TCHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_TOKEN_ONLY = re.compile(_TCHARS + r"\Z")
_ESSENCE = re.compile(rf"[ \t]*({_TCHARS})/({_TCHARS})[ \t]*")
_CTL = r"\x00-\x08\x0a-\x1f\x7f"  # control characters but HTAB
_PARAMETER = re.compile(
    rf';[ \t]*(?:([^\s;="{_CTL}]+)[ \t]*=[ \t]*'
    rf'(?:"((?:[^"\\{_CTL}]|\\[^{_CTL}])*)"|([^\s;"{_CTL}]*))[ \t]*)?'
)
_QUOTED_PAIR = re.compile(r"\\(.)")
_NEEDS_ESCAPE = re.compile(r'(["\\])')


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaType:
    """One media type (or media range): lower-case ``type`` and ``subtype``, and
    ``parameters`` in order as ``(lower-case name, value)``, a name possibly repeated."""

    type: str
    subtype: str
    parameters: tuple[tuple[str, str], ...] = ()

    @property
    def essence(self) -> str:
        """``type/subtype``, without parameters."""
        return f"{self.type}/{self.subtype}"

    def values(self, name: str) -> tuple[str, ...]:
        """Every value of parameter ``name`` (any case), in order."""
        name = name.lower()
        return tuple(value for key, value in self.parameters if key == name)

    def param(self, name: str) -> str | None:
        """The first value of parameter ``name`` (any case), or None."""
        found = self.values(name)
        return found[0] if found else None

    def __str__(self) -> str:
        return self.essence + "".join(
            f"; {name}={_written(value)}" for name, value in self.parameters
        )


# Every request and every answer has a few of these headers and they repeat (an upstream's
# Content-Type, a viewer's Accept): read each text once. Bounded, and the value is frozen.
@functools.lru_cache(maxsize=256)
def parse_media_type(text: str) -> MediaType:
    """The media type ``text`` spells (module docstring). Raises :class:`MediaTypeError`."""
    head = _ESSENCE.match(text)
    if head is None:
        raise MediaTypeError("media type without a readable type/subtype")
    parameters = []
    position = head.end()
    while position < len(text):
        match = _PARAMETER.match(text, position)
        if match is None:
            raise MediaTypeError("media type with unreadable parameters")
        name, quoted, token = match.groups()
        if name is not None:
            value = token if quoted is None else _QUOTED_PAIR.sub(r"\1", quoted)
            parameters.append((name.lower(), value))
        position = match.end()
    return MediaType(
        type=head.group(1).lower(), subtype=head.group(2).lower(), parameters=tuple(parameters)
    )


def media_or_none(text: str) -> MediaType | None:
    """:func:`parse_media_type`, or None when ``text`` cannot be read."""
    try:
        return parse_media_type(text)
    except MediaTypeError:
        return None


def _written(value: str) -> str:
    if _TOKEN_ONLY.match(value):
        return value
    return '"' + _NEEDS_ESCAPE.sub(r"\\\1", value) + '"'
