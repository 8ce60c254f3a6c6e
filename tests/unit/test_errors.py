"""The one error → problem mapping (gateway.errors)."""

from __future__ import annotations

import pytest
from aiohttp import web

from gateway.errors import (
    RedirectNotFollowed,
    UpstreamStatus,
    UpstreamTimeout,
    UpstreamUnavailable,
    problem_for,
)
from routing.errors import (
    InvalidIdentifier,
    InvalidRequestPath,
    RetrieveUrlRefused,
    UnknownCommunity,
    UnknownSource,
)


@pytest.mark.parametrize(
    ("exc", "status", "slug"),
    [
        (InvalidIdentifier("UID", "1.02", "no leading zeros"), 400, "invalid-identifier"),
        (InvalidRequestPath("x"), 400, "invalid-request"),
        (UnknownCommunity("9.9"), 404, "unknown-community"),
        (UnknownSource("7.7"), 404, "unknown-retrieve-location"),
        (
            RetrieveUrlRefused("https://evil/", "origin not on the allow-list"),
            403,
            "retrieve-url-refused",
        ),
        (UpstreamUnavailable("pacs", "connect"), 502, "upstream-unavailable"),
        (UpstreamTimeout("pacs", "read"), 504, "upstream-timeout"),
        (UpstreamStatus("pacs", 404, ()), 404, "upstream-status"),
        (UpstreamStatus("pacs", 410, ()), 410, "upstream-status"),
        (UpstreamStatus("pacs", 503, ()), 503, "upstream-status"),
        (UpstreamStatus("pacs", 500, ()), 502, "upstream-status"),
        (RedirectNotFollowed("pacs", 302), 502, "redirect-refused"),
        (web.HTTPMethodNotAllowed("POST", ["GET"]), 405, "method-not-allowed"),
        (RuntimeError("secret internals"), 500, "internal-error"),
    ],
)
def test_mapping(exc: Exception, status: int, slug: str) -> None:
    problem = problem_for(exc)
    assert problem.status == status
    body = problem.body()
    assert body["type"] == f"urn:mado-gateway:problem:{slug}"
    assert body["status"] == status
    assert "secret internals" not in str(body)


def test_identifier_value_is_not_echoed_but_unknown_ids_are_named() -> None:
    assert "<script>" not in problem_for(InvalidIdentifier("UID", "<script>", "bad")).detail
    assert "9.9.9" in problem_for(UnknownCommunity("9.9.9")).detail


def test_upstream_warnings_are_relayed() -> None:
    problem = problem_for(UpstreamStatus("pacs", 406, ("299 pacs: cannot transcode",)))
    assert problem.headers == (("Warning", "299 pacs: cannot transcode"),)
