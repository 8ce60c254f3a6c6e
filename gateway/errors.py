"""Gateway errors, and the one place where any error becomes an HTTP problem (RFC 9457).

::

    GatewayError
     ├── UpstreamUnavailable   502  no base URL of the upstream could be reached or answered sanely
     ├── UpstreamTimeout       504  connect or idle-read timeout before the first byte was relayed
     ├── UpstreamStatus        4xx/502/503  the upstream answered with an error status (relayed)
     ├── RedirectNotFollowed   502  the upstream redirected and the redirect policy refused (rule)
     ├── AddressRefused        502  the upstream's host is (or resolves only to) a refused address
     ├── BridgeRefused              a RAD-160 that RAD-69/RAD-75 cannot carry (no upstream asked)
     │    ├── ResourceNotBridgeable  501  metadata, rendered, thumbnail, frames or bulk data
     │    ├── InstanceListRequired   409  study or series level, and no manifest lists its instances
     │    └── NoInstanceAccepted     406  the Accept names no multipart/related DICOM range
     ├── BridgeFailed          404/406/502  the RAD-75/RAD-69 answer returned none of the instances
     └── InboundRefused             the request itself is refused before any routing
          ├── ControlInQuery   400  an encoded control character (CR, LF, NUL…) in the query
          ├── InvalidHost      400  a Host header that is not a host name or address (repeated)
          ├── UriTooLong       414  the URL is longer than server.limits.max_url_bytes
          ├── HttpVersionNotSupported  505  HTTP/1.0 on a route whose answers need chunked framing
          ├── HeadersTooLarge  431  too many header bytes or headers
          ├── BodyNotAllowed   413  a body on a request that takes none (or over the limit)
          ├── BodyTooLarge     413  a manifest over server.limits.max_manifest_bytes
          ├── CorsRefused      403  a CORS preflight from an origin that is not allowed
          │    ├── CorsMethodRefused   403  … for a method the route does not take
          │    └── CorsHeadersRefused  403  … with a request header the route does not accept
          ├── ClientNotAllowed 403  a client certificate subject not on the allowed list
          ├── RateLimited      429  the client's token bucket is empty (Retry-After)
          └── TooManyStreams   429  the client already has max_streams responses running

Routing errors (:mod:`routing.errors`) are mapped here too. A problem never carries an
upstream's body or a parser's message: ``detail`` is our own sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web

from gateway.exchange import Refusal, RefusalKind
from mado.errors import ManifestError, ManifestTooComplex, SelectionError, UnroutableSeries
from routing.errors import (
    InvalidIdentifier,
    InvalidRequestPath,
    RetrieveUrlRefused,
    RoutingError,
    UnknownCommunity,
    UnknownSource,
    UnsupportedTransferSyntax,
)

__all__ = [
    "refusal_for",
    "AddressRefused",
    "BodyNotAllowed",
    "BodyTooLarge",
    "BridgeFailed",
    "BridgeRefused",
    "ClientNotAllowed",
    "ControlInQuery",
    "CorsHeadersRefused",
    "CorsMethodRefused",
    "CorsRefused",
    "GatewayError",
    "HeadersTooLarge",
    "HttpVersionNotSupported",
    "InboundRefused",
    "InstanceListRequired",
    "InvalidHost",
    "NoInstanceAccepted",
    "Problem",
    "RateLimited",
    "RedirectNotFollowed",
    "ResourceNotBridgeable",
    "TooManyStreams",
    "UriTooLong",
    "UpstreamProtocol",
    "UpstreamStatus",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "problem_for",
]

PROBLEM_TYPE_BASE = "urn:mado-gateway:problem:"


class GatewayError(Exception):
    """An error the gateway answers with a problem document."""

    status = 502
    slug = "upstream-error"


class UpstreamUnavailable(GatewayError):
    status = 502
    slug = "upstream-unavailable"

    def __init__(self, upstream: str, reason: str) -> None:
        self.upstream = upstream
        self.reason = reason  # a bounded metric label: connect, tls, protocol, closed
        super().__init__(f"upstream {upstream} could not be reached ({reason})")


class UpstreamTimeout(GatewayError):
    status = 504
    slug = "upstream-timeout"

    def __init__(self, upstream: str, phase: str) -> None:
        self.upstream = upstream
        self.reason = f"{phase}-timeout"
        super().__init__(f"upstream {upstream} did not answer in time ({phase})")


class UpstreamStatus(GatewayError):
    """The upstream answered a status that is not relayed: the client sees a 4xx or 503 as is,
    any other status (5xx, 1xx, a 3xx not followed, anything outside 100-599) as 502."""

    slug = "upstream-status"

    def __init__(self, upstream: str, upstream_status: int, warnings: tuple[str, ...]) -> None:
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.warnings = warnings
        self.status = (
            upstream_status if 400 <= upstream_status < 500 or upstream_status == 503 else 502
        )
        phrase = _phrase(upstream_status)
        super().__init__(f"upstream {upstream} answered {upstream_status} {phrase}")


class UpstreamProtocol(GatewayError):
    """An answer that cannot be relayed as HTTP says it must be read: a malformed head, or a
    multipart answer whose boundary is missing or not one RFC 2046 allows."""

    status = 502
    slug = "upstream-protocol"

    def __init__(self, upstream: str, what: str) -> None:
        self.upstream = upstream
        self.reason = "protocol"
        super().__init__(f"upstream {upstream} answered {what}")


class RedirectNotFollowed(GatewayError):
    """``rule`` is the :class:`routing.urlpolicy.Rule` that refused (a bounded word)."""

    status = 502
    slug = "redirect-refused"

    def __init__(self, upstream: str, upstream_status: int, rule: str = "policy") -> None:
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.rule = rule
        super().__init__(
            f"upstream {upstream} answered a redirect ({upstream_status}) that the redirect "
            f"policy does not allow following (rule: {rule})"
        )


class AddressRefused(GatewayError):
    """The target's address class (``loopback``, ``private``…) is refused by the policy."""

    status = 502
    slug = "address-refused"

    def __init__(self, upstream: str, address_class: str) -> None:
        self.upstream = upstream
        self.address_class = address_class
        self.reason = "address"
        super().__init__(
            f"upstream {upstream} is at an address the address policy refuses ({address_class})"
        )


class BridgeRefused(GatewayError):
    """A RAD-160 request routed to a SOAP upstream (``rad-75`` community, ``rad-69`` source)
    that RAD-69/RAD-75 cannot carry; refused before any upstream is asked. ``detail`` is
    our own sentence naming why (README "Bridge matrix")."""


_NOT_BRIDGEABLE_WHY = {
    "metadata": "DICOM JSON metadata would need every instance of the request moved whole "
    "to describe it",
    "rendered": "rendering needs an image codec and a windowing pipeline this gateway "
    "does not have",
    "thumbnail": "rendering needs an image codec and a windowing pipeline this gateway "
    "does not have",
    "frames": "frames would be cut out of the whole instance, which this gateway does "
    "not do",
    "bulkdata": "bulk data would be cut out of the whole instance, which this gateway "
    "does not do",
}


class ResourceNotBridgeable(BridgeRefused):
    """RAD-69/RAD-75 return whole instances only (xcai-digest.md §8.1): metadata, rendered,
    thumbnail, frames and bulk data are refused, each with its reason."""

    status = 501
    slug = "not-bridgeable"

    def __init__(self, resource: str, upstream: str) -> None:
        self.resource = resource
        self.upstream = upstream
        why = _NOT_BRIDGEABLE_WHY.get(resource, "only whole instances can be carried")
        super().__init__(
            f"{resource} cannot be retrieved from upstream {upstream}, which speaks XCA-I "
            f"(RAD-69/RAD-75: whole instances only): {why}; retrieve the instances instead"
        )


class InstanceListRequired(BridgeRefused):
    """A study- or series-level RAD-160 to an XCA-I upstream whose instances no manifest
    this gateway holds lists (xcai-digest.md §9 item 32)."""

    status = 409
    slug = "instance-list-required"

    def __init__(self, level: str, upstream: str) -> None:
        self.level = level
        self.upstream = upstream
        super().__init__(
            f"upstream {upstream} speaks XCA-I, which retrieves instances one by one and "
            f"cannot list the instances of a {level}, and this gateway holds no manifest "
            f"listing them; ask for each instance (instance-level requests), or POST the "
            f"manifest to /mado/retrieve"
        )


class NoInstanceAccepted(BridgeRefused):
    status = 406
    slug = "not-acceptable"

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__(
            f"upstream {upstream} speaks XCA-I, which returns DICOM instances only, and the "
            'Accept header names no multipart/related; type="application/dicom" range'
        )


_BRIDGE_FAILED_SLUGS = {
    404: "not-found",
    406: "transfer-syntax-unavailable",
    502: "upstream-unavailable",
}


class BridgeFailed(GatewayError):
    """The RAD-75/RAD-69 answer returned none of the requested instances: 406 when every
    error is a transfer-syntax error, 502 when the community is unavailable, else 404
    (xcai-digest.md §8.3, :func:`gateway.protocols.xca.outcomes.http_answer`). ``codes`` are
    the RegistryError codes reported, as counted words for the detail (never their text)."""

    def __init__(self, upstream: str, status: int, codes: tuple[str, ...]) -> None:
        self.upstream = upstream
        self.status = status
        self.slug = _BRIDGE_FAILED_SLUGS.get(status, "upstream-error")
        self.codes = codes
        reported = ", ".join(codes) or "no error"
        super().__init__(
            f"upstream {upstream} returned none of the requested instances ({reported})"
        )


class InboundRefused(GatewayError):
    """A request refused for what it is, before routing. ``detail`` is fixed per class."""

    close_connection = False
    """True when the connection must close after the answer: an unread body, an oversized
    request line or head, a client whose framing we do not speak — start afresh."""

    detail = "the request was refused"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)


class ControlInQuery(InboundRefused):
    status = 400
    slug = "invalid-request"
    detail = "not a RAD-160 request: an encoded control character in the query"


class InvalidHost(InboundRefused):
    status = 400
    slug = "invalid-host"
    detail = "the Host header is not a host name or address (or there are several)"


class UriTooLong(InboundRefused):
    close_connection = True
    status = 414
    slug = "uri-too-long"
    detail = "the request URL is longer than this gateway accepts"


class HttpVersionNotSupported(InboundRefused):
    close_connection = True
    status = 505
    slug = "http-version-not-supported"
    detail = (
        "this route answers with HTTP/1.1 chunked framing, so that a cut-off answer can never "
        "look complete; send the request with HTTP/1.1"
    )


class HeadersTooLarge(InboundRefused):
    close_connection = True
    status = 431
    slug = "headers-too-large"
    detail = "the request headers are larger or more numerous than this gateway accepts"


class BodyNotAllowed(InboundRefused):
    close_connection = True
    status = 413
    slug = "request-body-not-allowed"
    detail = "this request takes no body (or a smaller one)"


class BodyTooLarge(InboundRefused):
    close_connection = True
    status = 413
    slug = "request-body-too-large"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(
            f"the manifest is larger than this gateway accepts "
            f"(server.limits.max_manifest_bytes: {limit} bytes)"
        )


class CorsRefused(InboundRefused):
    status = 403
    slug = "cors-origin-refused"
    detail = "the page's origin is not allowed to call this gateway"


class CorsMethodRefused(CorsRefused):
    slug = "cors-method-refused"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        self.method = method
        super().__init__(
            f"this route does not take {method[:20]!r} from a page; it takes {', '.join(allowed)}"
        )


class CorsHeadersRefused(CorsRefused):
    slug = "cors-headers-refused"

    def __init__(self, header: str) -> None:
        self.header = header
        super().__init__(
            f"this route does not accept the request header {header[:64]!r} from a page"
        )


class ClientNotAllowed(InboundRefused):
    status = 403
    slug = "client-not-allowed"
    detail = "the client certificate is not on this gateway's list of allowed consumers"

    def __init__(self, subject: str | None = None) -> None:
        self.subject = subject  # for the security trail only, never in the problem
        super().__init__()


class RateLimited(InboundRefused):
    status = 429
    slug = "rate-limited"
    detail = "too many requests from this client; retry after the time in Retry-After"

    def __init__(self, retry_after_s: int) -> None:
        self.retry_after_s = retry_after_s
        super().__init__()


class TooManyStreams(RateLimited):
    slug = "too-many-streams"
    detail = "this client already has as many responses running as it may; retry later"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """An RFC 9457 problem document and the headers that go with it."""

    status: int
    slug: str
    title: str
    detail: str
    headers: tuple[tuple[str, str], ...] = ()

    def body(self, instance: str | None = None) -> dict[str, object]:
        doc: dict[str, object] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        return doc


def refusal_for(exc: BaseException) -> Refusal | None:
    """The security refusal an error stands for, for the security trail; None for others."""
    match exc:
        case RetrieveUrlRefused():
            return Refusal(kind=RefusalKind.RETRIEVE_URL, target=exc.target, detail=exc.rule)
        case ClientNotAllowed():
            return Refusal(
                kind=RefusalKind.CLIENT,
                target=exc.subject or "(no client certificate)",
                detail="client certificate subject is not on server.tls.allowed_client_subjects",
            )
    return None


def problem_for(exc: BaseException) -> Problem:
    """Map any exception to the problem the client sees. Unknown exceptions are a bare 500."""
    match exc:
        case InvalidIdentifier():
            return _problem(400, "invalid-identifier", f"invalid {exc.kind}: {exc.reason}")
        case InvalidRequestPath():
            return _problem(400, "invalid-request", f"not a RAD-160 request: {exc}")
        case UnknownCommunity():
            return _problem(404, "unknown-community", str(exc))
        case UnknownSource():
            return _problem(404, "unknown-retrieve-location", str(exc))
        case UnsupportedTransferSyntax():
            return _problem(406, "unsupported-transfer-syntax", str(exc))
        case RetrieveUrlRefused():
            return _problem(403, "retrieve-url-refused", f"{exc}: the URL policy does not allow it")
        case UpstreamStatus():
            headers = tuple(("Warning", w) for w in exc.warnings)
            return _problem(exc.status, exc.slug, str(exc), headers=headers)
        case RateLimited():
            retry = (("Retry-After", str(exc.retry_after_s)),)
            return _problem(exc.status, exc.slug, str(exc), headers=retry)
        case GatewayError():
            return _problem(exc.status, exc.slug, str(exc))
        case RoutingError():
            return _problem(500, "internal-error", "the request could not be routed")
        case SelectionError():
            return _problem(400, "invalid-selection", str(exc))
        case UnroutableSeries():
            return _problem(422, "unroutable-series", str(exc))
        case ManifestTooComplex():
            return _problem(422, "manifest-too-complex", str(exc))
        case ManifestError():  # the message names the problem in the manifest, not our code
            return _problem(400, "invalid-manifest", str(exc))
        case web.HTTPException():
            slug = _phrase(exc.status).lower().replace(" ", "-")
            allow = exc.headers.get("Allow")  # a 405 names what is allowed (RFC 9110 §15.5.6)
            headers = (("Allow", allow),) if allow is not None else ()
            return _problem(
                exc.status, slug, f"{exc.status} {_phrase(exc.status)}", headers=headers
            )
        case _:
            return _problem(
                500, "internal-error", "an internal error occurred; see the gateway log"
            )


def _problem(
    status: int, slug: str, detail: str, headers: tuple[tuple[str, str], ...] = ()
) -> Problem:
    return Problem(status=status, slug=slug, title=_phrase(status), detail=detail, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
