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
``Server``; ``Warning`` is relayed, as PS3.18 §8.6.2 asks. Headers that would name the
source are the protocol's business (:mod:`gateway.protocols.xcwado.answer_headers`).
"""

from __future__ import annotations

from collections.abc import Mapping

from multidict import CIMultiDict, CIMultiDictProxy

from routing.accept import outbound_accept
from routing.rad160 import ResourceKind

__all__ = ["request_headers", "response_headers"]

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
