"""No header of a relayed answer names the source (MADO at the border; design.md §4).

:func:`hide_source` runs on every relayed answer and on the problem that replaces an upstream
error: ``Content-Location``, ``Location`` and the targets of ``Link`` are mapped to the
gateway's public URL like metadata URLs (:class:`~gateway.protocols.xcwado.border.Border`);
one the gateway cannot map, and any other header that mentions a source host, is dropped.
"""

from __future__ import annotations

import re

from aiohttp import web
from multidict import CIMultiDict

from gateway.keys import BORDER
from gateway.protocols.xcwado.border import Border

__all__ = ["hide_source", "hide_source_on_prepare"]

_URL_HEADERS = frozenset({"content-location", "location"})
# Opaque to the border: a multipart boundary cannot change without rewriting the body.
_UNTOUCHED = frozenset({"content-type"})
_LINK_TARGET = re.compile(r"<([^>]*)>")


def hide_source(headers: CIMultiDict[str], border: Border) -> None:
    """Map or drop, in place, every header that would show a consumer the source's address."""
    for name in {key.lower() for key in headers}:
        if name in _UNTOUCHED:
            continue
        values = headers.getall(name)
        del headers[name]
        for value in values:
            kept = _kept(name, value, border)
            if kept is not None:
                headers.add(name, kept)


def _kept(name: str, value: str, border: Border) -> str | None:
    """The value to relay, or None to drop it. A mapped URL is ours; what is left of a value
    after mapping must not mention a source host."""
    rest = value
    if name in _URL_HEADERS:
        mapped = border.map_reference(value)
        if mapped is not None:
            return mapped or None
    elif name == "link":
        targets = [border.map_reference(m.group(1)) for m in _LINK_TARGET.finditer(value)]
        if "" in targets:
            return None  # a link the gateway cannot serve: the whole field goes
        replacements = iter(targets)
        value = _LINK_TARGET.sub(lambda m: f"<{next(replacements) or m.group(1)}>", value)
        unmapped = iter(targets)
        rest = _LINK_TARGET.sub(lambda m: "<>" if next(unmapped) else m.group(0), rest)
    return None if border.names_source(rest) else value


async def hide_source_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """The ``on_response_prepare`` handler applying :func:`hide_source` to a relay's answer."""
    border = request.get(BORDER)
    if border is not None:
        hide_source(response.headers, border)
