"""Absolute URLs as a configuration writes them: base URLs and origins.

An origin is ``scheme://host:port`` in lower case with the port always written, so two
spellings of one origin compare equal.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from routing.kinds import with_text

__all__ = ["base_url", "origin", "origin_of", "parse_base_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host:port`` of an absolute URL, lower-cased, with the default port written out.

    Raises ``ValueError`` for a URL without scheme or host or with an invalid port.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not scheme or not host:
        raise ValueError(f"not an absolute URL: {url!r}")
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    if port is None:
        raise ValueError(f"no port known for scheme {scheme!r}")
    if ":" in host:  # IPv6 literal, in its one canonical spelling
        try:
            host = str(ipaddress.IPv6Address(host))
        except ValueError:
            raise ValueError(f"invalid IPv6 literal in {url!r}") from None
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def parse_base_url(value: str) -> str:
    """Validate an absolute http(s) base URL and return it ending in ``/``.

    Raises ``ValueError`` with a reason fit for an operator.
    """
    parts = urlsplit(value)
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValueError("must be an absolute http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not carry credentials")
    if parts.query or parts.fragment:
        raise ValueError("must not have a query or fragment")
    try:
        origin_of(value)
    except ValueError:
        raise ValueError("has an invalid port") from None
    return value if value.endswith("/") else value + "/"


base_url = with_text(parse_base_url, "{text!r} {reason}")
"""`parse_base_url`, its reason preceded by the text (``'pacs' must be …``)."""


def origin(text: str) -> str:
    """The origin of an absolute http(s) URL written in a configuration."""
    return origin_of(base_url(text))
