"""Gateway errors, and the one place where any error becomes an HTTP problem (RFC 9457).

::

    GatewayError
     ├── UpstreamUnavailable   502  no base URL of the upstream could be reached or answered sanely
     ├── UpstreamTimeout       504  connect or idle-read timeout before the first byte was relayed
     ├── UpstreamStatus        4xx/502/503  the upstream answered with an error status (relayed)
     └── RedirectNotFollowed   502  the upstream redirected and no redirect policy allows following

Routing errors (:mod:`routing.errors`) are mapped here too. A problem never carries an
upstream's body or a parser's message: ``detail`` is our own sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web

from routing.errors import (
    InvalidIdentifier,
    InvalidRequestPath,
    RetrieveUrlRefused,
    RoutingError,
    UnknownCommunity,
    UnknownSource,
)

__all__ = [
    "GatewayError",
    "Problem",
    "RedirectNotFollowed",
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
    """The upstream answered an error status; relayed as is for 4xx and 503, as 502 otherwise."""

    slug = "upstream-status"

    def __init__(self, upstream: str, upstream_status: int, warnings: tuple[str, ...]) -> None:
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.warnings = warnings
        self.status = upstream_status if upstream_status < 500 or upstream_status == 503 else 502
        phrase = _phrase(upstream_status)
        super().__init__(f"upstream {upstream} answered {upstream_status} {phrase}")


class RedirectNotFollowed(GatewayError):
    status = 502
    slug = "redirect-refused"

    def __init__(self, upstream: str, upstream_status: int) -> None:
        self.upstream = upstream
        super().__init__(
            f"upstream {upstream} answered a redirect ({upstream_status}); "
            "no redirect policy allows following it"
        )


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
        case RetrieveUrlRefused():
            return _problem(403, "retrieve-url-refused", f"{exc}: the URL policy does not allow it")
        case UpstreamStatus():
            headers = tuple(("Warning", w) for w in exc.warnings)
            return _problem(exc.status, exc.slug, str(exc), headers=headers)
        case GatewayError():
            return _problem(exc.status, exc.slug, str(exc))
        case RoutingError():
            return _problem(500, "internal-error", "the request could not be routed")
        case web.HTTPException():
            slug = _phrase(exc.status).lower().replace(" ", "-")
            return _problem(exc.status, slug, f"{exc.status} {_phrase(exc.status)}")
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
