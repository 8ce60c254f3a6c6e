"""Which headers cross the gateway, in each direction.

Requests: an allow-list. A consumer's cookies, credentials and tracing headers do not leave
the community by default; what DICOMweb needs (``Accept`` with its transfer-syntax
parameter, conditional and range headers) does. ``Accept`` goes as the client sent it
(checklist item 20) unless a range asks for Implicit VR Little Endian or Explicit VR Big
Endian: those ranges are dropped, and a request left with nothing acceptable is refused
before anything is sent (checklist item 23, :mod:`routing.accept`). Every request carries
an ``Accept`` (checklist item 22): the DICOMweb default for the resource when the client
gave none. ``Accept-Encoding: identity`` is always sent:
the gateway relays bytes and never decompresses, and Orthanc's gzip of single-part answers is
about twenty times slower than sending them plain.

Responses: everything except hop-by-hop headers (RFC 9110 §7.6.1) and the upstream's
``Server``; ``Warning`` is relayed, as PS3.18 §8.6.2 asks. No header that names the source
crosses the border (:func:`hide_source`, run on every relayed answer and on the problem that
replaces an upstream error): ``Content-Location``, ``Location`` and the targets of ``Link``
are mapped to the gateway's public URL like metadata URLs (:class:`~gateway.border.Border`);
one the gateway cannot map, and any other header that mentions a source host, is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.border import Border
from gateway.keys import BORDER, EXCHANGE
from routing.accept import outbound_accept
from routing.rad160 import ResourceKind

__all__ = [
    "hide_source",
    "hide_source_on_prepare",
    "request_headers",
    "request_id_on_prepare",
    "response_headers",
]

_FORWARDED_REQUEST_HEADERS = (  # Accept is handled on its own
    "Accept-Charset",
    "Accept-Language",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Unmodified-Since",
    "Range",
    "If-Range",
    "Cache-Control",
)

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_DROPPED_RESPONSE_HEADERS = _HOP_BY_HOP | {"server", "date", "content-length"}

# PS3.18 §8.7.3: every WADO-RS request carries Accept; used when the consumer sent none.
_DEFAULT_ACCEPT = {
    ResourceKind.INSTANCES: 'multipart/related; type="application/dicom"',
    ResourceKind.METADATA: "application/dicom+json",
}


def request_headers(
    incoming: Mapping[str, str], resource: ResourceKind, request_id: str
) -> CIMultiDict[str]:
    """Headers for the upstream request, built from the consumer's.

    Raises :class:`~routing.errors.UnsupportedTransferSyntax` when the consumer's Accept
    leaves nothing that may be requested over DICOMweb.
    """
    out: CIMultiDict[str] = CIMultiDict()
    source = incoming if isinstance(incoming, CIMultiDictProxy) else CIMultiDict(incoming)
    accept = outbound_accept(source.getall("Accept", ()))
    for value in accept or (_DEFAULT_ACCEPT.get(resource, "*/*"),):
        out.add("Accept", value)
    for name in _FORWARDED_REQUEST_HEADERS:
        for value in source.getall(name, ()):
            out.add(name, value)
    out["Accept-Encoding"] = "identity"
    out["X-Request-ID"] = request_id
    return out


def response_headers(upstream: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """Headers relayed to the consumer. ``Content-Length`` is set by the forwarder itself."""
    connection_tokens = {
        token.strip().lower()
        for value in upstream.getall("Connection", ())
        for token in value.split(",")
    }
    dropped = _DROPPED_RESPONSE_HEADERS | connection_tokens
    return CIMultiDict((k, v) for k, v in upstream.items() if k.lower() not in dropped)


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


async def request_id_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer names its exchange in ``X-Request-ID``, streamed ones included.

    Streamed answers are prepared by the handler, before the exchange middleware sees them,
    so the header is set here, as the status line and headers are about to be written.
    """
    exchange = request.get(EXCHANGE)
    if exchange is not None and "X-Request-ID" not in response.headers:
        response.headers["X-Request-ID"] = exchange.request_id
