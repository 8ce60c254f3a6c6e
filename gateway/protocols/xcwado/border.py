"""Where a source's URLs go when they cross the gateway: the border mapping of one relay.

A source (or, seen from an initiating gateway, a responding gateway) names its resources by
its own base URL: ``http://pacs:8042/dicom-web/studies/…``. A consumer on the other side can
only reach them through the gateway, at the gateway's *public prefix* for the same resource
(``https://gw.example.org/wado/homeCommunityId/…/RetrieveLocationUID/…/``). A
:class:`Border` maps one onto the other:

* a reference that resolves (RFC 3986 §5, against the URL the source was asked for) to a URL
  below one of the source's base URLs becomes the public prefix followed by the rest;
* a reference to the source's origin outside its base URLs names something the gateway does
  not serve: it is *withheld* (mapped to ``""``), so that the source's address never
  crosses, even as a dead link;
* anything else (another origin, a ``urn:``) is not the source's and stays as it is.

An origin here is a host and a port: ``https://pacs:8042/`` is the server ``http://pacs:8042/``
is, whichever scheme a document claims.

Two URLs are the same when RFC 3986 §6.2.2 and WHATWG URL parsing say so: scheme and host
letter case, an omitted or explicit default port, leading zeros in the port, an empty port,
percent-encoded unreserved characters, ``.``/``..`` segments, a trailing dot on the host,
IPv6 spellings, and backslashes (which browsers read as slashes in http(s) URLs). Beyond
them, the base path matches in any letter case (many sources ignore it; the rest of the
path is kept as written).

Pure: no I/O, no aiohttp.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urljoin, urlsplit

from routing.registry import Route
from routing.urls import DEFAULT_PORTS

__all__ = ["Border", "SourceBase", "border_for", "parse_base"]

_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_URL_WHITESPACE = " \t\r\n\f\x00"
_CHANGES = re.compile(r"[\\%\s\x00]|/\.")  # what URL normalisation could alter


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceBase:
    """One base URL in normal form: ``scheme://host[:port]path`` with ``path`` ending in ``/``.

    ``port`` is None for the scheme's default port; ``host`` is lower case, without a
    trailing dot, an IPv6 address in its compressed form without brackets.
    """

    scheme: str
    host: str
    port: int | None
    path: str

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def origin(self) -> tuple[str, int]:
        """Host and port: http and https on one host and port are one server."""
        return self.host, self.port or DEFAULT_PORTS[self.scheme]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.authority}{self.path}"


@functools.lru_cache(maxsize=256)  # per request, with one of a few configured base URLs
def parse_base(url: str) -> SourceBase:
    """The normal form of an absolute http(s) base URL; ``ValueError`` if it is not one."""
    normal = _normalise(urlsplit(url))
    if normal is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    scheme, host, port, path = normal[:4]
    return SourceBase(
        scheme=scheme, host=host, port=port, path=path if path.endswith("/") else path + "/"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Border:
    """The mapping for one relay. ``bases``: the source's base URLs (every failover address
    names the same resources); ``request_url``: what the source was asked for, against which
    its relative references resolve; ``public``: the public prefix, ending in ``/``."""

    bases: tuple[SourceBase, ...]
    request_url: str
    public: str
    hosts: frozenset[str] = field(init=False)
    plain: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", frozenset(b.host for b in self.bases))
        object.__setattr__(self, "plain", tuple(b.url for b in self.bases))

    @classmethod
    def create(cls, *, bases: tuple[str, ...], request_url: str, public: str) -> Border:
        """``ValueError`` when a base URL is not absolute http(s) or ``public`` lacks its ``/``."""
        if not public.endswith("/"):
            raise ValueError("the public prefix must end in /")
        parsed = tuple(dict.fromkeys(parse_base(b) for b in bases))
        return cls(bases=parsed, request_url=request_url, public=public)

    def map_reference(self, reference: str) -> str | None:
        """What a URL reference found in a document becomes for the consumer.

        Returns the public URL, ``""`` for a reference withheld (the source's origin, outside
        its base URLs), or None when the reference is not the source's (leave it alone).
        """
        for head in self.plain:
            # The common case, without URL parsing: the base in normal form, then a rest
            # that normalisation would not change.
            rest = reference[len(head) :]
            if reference.startswith(head) and not _CHANGES.search(rest) and rest[:1] != ".":
                return self.public + rest
        text = reference.strip(_URL_WHITESPACE)
        if not text:
            return None
        # WHATWG URL parsing: tabs and newlines inside are dropped, backslashes are slashes.
        text = text.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
        try:
            target = urlsplit(urljoin(self.request_url, text))
            normal = _normalise(target)
        except ValueError:
            return None
        if normal is None:
            return None
        scheme, host, port, path, query, fragment = normal
        origin = (host, port or DEFAULT_PORTS[scheme])
        for base in self.bases:
            if origin != base.origin:
                continue
            # The base path in any letter case (see .spelling): the rest as written.
            if path[: len(base.path)].lower() == base.path.lower():
                rest = path[len(base.path) :]
                public = self.public
            elif path.lower() == base.path[:-1].lower():
                rest, public = "", self.public[:-1]
            else:
                continue
            return (
                public
                + rest
                + (f"?{query}" if query else "")
                + (f"#{fragment}" if fragment else "")
            )
        if any(origin == b.origin for b in self.bases):
            return ""
        return None

    def names_source(self, text: str) -> bool:
        """Whether ``text`` (a header value, say) mentions a source host in any letter case
        or percent-encoding."""
        lowered = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), text).lower()
        return any(host in lowered for host in self.hosts)


def border_for(route: Route, public: str, *, answered: str | None = None) -> Border:
    """The border of a relay along ``route`` whose answer came from base URL ``answered``
    (default: the first): relative references resolve against what that base was asked."""
    urls = dict(route.urls())
    base = answered if answered in urls else route.base_urls[0]
    return Border.create(bases=(base, *route.base_urls), request_url=urls[base], public=public)


def _normalise(parts: SplitResult) -> tuple[str, str, int | None, str, str, str] | None:
    """``(scheme, host, port, path, query, fragment)`` of an absolute http(s) URL in normal
    form, or None when it is not one. ``ValueError`` for an invalid port."""
    # Looser than routing.urls.parse_url on purpose: a document may spell the source's URL
    # with percent-encoded host letters, dot segments or a trailing dot, and every spelling
    # a client would resolve to the source must be found, not refused.
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc:
        return None
    host = _normal_host(parts.hostname or "")
    if not host:
        return None
    port = _port(parts.netloc)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    path = _remove_dot_segments(_decode_unreserved(parts.path) or "/")
    return scheme, host, port, path, parts.query, parts.fragment


def _normal_host(host: str) -> str:
    host = _PERCENT.sub(lambda m: chr(int(m.group(1), 16)), host).lower().rstrip(".")
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return ""
    return host


def _port(netloc: str) -> int | None:
    """The port of ``[userinfo@]host[:port]``: None when absent or empty."""
    hostport = netloc.rpartition("@")[2]
    if hostport.startswith("["):
        hostport = hostport.partition("]")[2]
    digits = hostport.partition(":")[2] if ":" in hostport else ""
    if not digits:
        return None
    if not digits.isdigit() or int(digits) > 65535:
        raise ValueError("invalid port")
    return int(digits)


def _decode_unreserved(path: str) -> str:
    """Percent-encoded unreserved characters decoded, other escapes in upper case (§6.2.2.2)."""

    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else "%" + match.group(1).upper()

    return _PERCENT.sub(one, path) if "%" in path else path


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    if "." not in path:
        return path
    output: list[str] = []
    segments = path.split("/")
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result
