"""Absolute URLs as a configuration writes them: base URLs and origins.

An origin is ``scheme://host:port`` in lower case with the port always written, so two
spellings of one origin compare equal.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from routing.kinds import with_text

__all__ = [
    "DEFAULT_PORTS",
    "Url",
    "base_url",
    "base_url_problem",
    "origin",
    "origin_of",
    "parse_base_url",
    "parse_url",
]

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True, kw_only=True)
class Url:
    """A URL split once (RFC 3986 §3): the one reading every validator starts from.

    ``scheme`` and ``host`` are lower case (either may be empty), an IPv6 host in its
    canonical spelling without brackets; ``port`` is the explicit port, else the scheme's
    default, else None; ``netloc``, ``path``, ``query`` and ``fragment`` are as written;
    ``userinfo`` says whether credentials appear.
    """

    scheme: str
    host: str
    port: int | None
    netloc: str
    path: str
    query: str
    fragment: str
    userinfo: bool

    @property
    def origin(self) -> str:
        """``scheme://host:port``, the port always written: one spelling per origin.

        Raises ``ValueError`` for a URL without scheme or host, or with no port known.
        """
        if not self.scheme or not self.host:
            raise ValueError("not an absolute URL")
        if self.port is None:
            raise ValueError(f"no port known for scheme {self.scheme!r}")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def without_query(self) -> str:
        """``scheme://netloc/path``: no query, no fragment."""
        return f"{self.scheme}://{self.netloc}{self.path}"


def parse_url(text: str) -> Url:
    """Split ``text``. Raises ``ValueError`` when it cannot be split (a malformed ``[…]``
    host, an IPv6 literal that is not one) or its port is not a number from 0 to 65535."""
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    host = parts.hostname or ""
    if ":" in host:
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"invalid IPv6 literal in {text!r}") from None
    return Url(
        scheme=scheme,
        host=host,
        port=parts.port or DEFAULT_PORTS.get(scheme),
        netloc=parts.netloc,
        path=parts.path,
        query=parts.query,
        fragment=parts.fragment,
        userinfo=parts.username is not None or parts.password is not None,
    )


def origin_of(url: str) -> str:
    """``scheme://host:port`` of an absolute URL, lower-cased, with the default port written out.

    Raises ``ValueError`` for a URL without scheme or host or with an invalid port.
    """
    return parse_url(url).origin


def base_url_problem(url: Url) -> str | None:
    """Why ``url`` cannot be a base URL (http(s), no credentials, query or fragment), or None."""
    if url.scheme not in DEFAULT_PORTS:
        return "must be an absolute http:// or https:// URL"
    if url.userinfo:
        return "must not carry credentials"
    if url.query or url.fragment:
        return "must not have a query or fragment"
    return None


def parse_base_url(value: str) -> str:
    """Validate an absolute http(s) base URL and return it ending in ``/``.

    Raises ``ValueError`` with a reason fit for an operator.
    """
    try:
        url = parse_url(value)
    except ValueError:
        raise ValueError("has an invalid port") from None
    if url.scheme not in DEFAULT_PORTS:
        raise ValueError("must be an absolute http:// or https:// URL")
    if not url.host:
        raise ValueError("has no host")
    problem = base_url_problem(url)
    if problem is not None:
        raise ValueError(problem)
    return value if value.endswith("/") else value + "/"


base_url = with_text(parse_base_url, "{text!r} {reason}")
"""`parse_base_url`, its reason preceded by the text (``'pacs' must be …``)."""


def origin(text: str) -> str:
    """The origin of an absolute http(s) URL written in a configuration."""
    return origin_of(base_url(text))
