"""URL trust: which outbound URLs, addresses and redirects the gateway accepts (design.md §5).

Pure decisions, no I/O: the gateway resolves names and opens connections, this module says
yes or no and, for no, which rule refused. MADO Rev 1.1 §X.5 asks an Imaging Document
Consumer to "verify that any received URL is valid and corresponds to a known secure
location"; a gateway that dereferences caller-influenced URLs (``retrieveurl``, an
upstream's ``Location``) must do so before the first byte leaves it.

Three checks, applied to every outbound URL (configured base URLs, ``retrieveurl``,
redirect targets):

* :func:`vet_url` — the URL's own shape: http(s) only (https unless allowed), no userinfo
  (``https://trusted@evil/``), a host that is either a DNS name or a *canonical* IP literal
  (``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` are refused as ambiguous, as the
  WHATWG URL parser would turn them into 127.0.0.1), no control characters, no
  backslash before the query (WHATWG reads it as ``/`` there; in a query it is one more
  byte forwarded as received), and no path traversal however it is spelt: a *dot
  segment* is any path segment that, once percent-decoded (up to three times), stripped of
  ``;`` parameters (``..;jsessionid=1``, as Tomcat reads it) and NFKC-normalised (U+FF0E,
  the fullwidth full stop), is made of dots and spaces only (``..``, ``.``, ``...``,
  ``.. `` — Windows servers drop trailing dots and spaces); encoded ``/`` and ``\\``,
  non-ASCII paths and escapes that are not UTF-8 (overlong ``%c0%ae``) are refused too. A
  path that passes is sent exactly as written: nothing on the way (yarl included, given an
  encoded URL) has a dot segment left to resolve.
* :func:`refusing_class` — a resolved (or literal) address against an
  :class:`~routing.model.AddressPolicy`; IPv4 addresses embedded in IPv6 (mapped
  ``::ffff:a.b.c.d``, compatible, 6to4, Teredo, NAT64) are judged by both spellings.
* :func:`decide_redirect` — one redirect hop against a :class:`~routing.model.RedirectPolicy`:
  status, hop limit, loop, scheme, origin, and whether credentials must be dropped. The raw
  ``Location`` is vetted *before* it is resolved against the current URL: resolution removes
  plain ``../`` segments, so a check made afterwards could not see a climb out of the
  upstream's base path.

Every refusal is a :class:`UrlRefused` whose ``rule`` is a :class:`Rule` (a bounded word,
fit for a metric label and a problem document).
"""

from __future__ import annotations

import enum
import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from routing.errors import RoutingError
from routing.urls import DEFAULT_PORTS, origin_of, parse_url

if TYPE_CHECKING:  # the configuration's upstreams are checked with vet_url: no import cycle
    from routing.model import AddressPolicy, Config, RedirectPolicy

__all__ = [
    "FOLLOWED_STATUSES",
    "AddressClass",
    "IpAddress",
    "RedirectStep",
    "Rule",
    "UrlRefused",
    "VettedUrl",
    "classify_address",
    "decide_redirect",
    "refusing_class",
    "registered_origins",
    "vet_host",
    "vet_url",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
FOLLOWED_STATUSES = frozenset({301, 302, 303, 307, 308})


class Rule(enum.StrEnum):
    """Why a URL or redirect was refused."""

    SCHEME = "scheme"  # not http(s), or http where https is required
    USERINFO = "userinfo"  # user:password@ in the authority
    IP_SPELLING = "ip-spelling"  # a numeric host that is not a canonical IP literal
    MALFORMED = "malformed"  # control characters, bad host, bad port, bad escapes
    TRAVERSAL = "traversal"  # dot segments or encoded separators in the path
    ADDRESS = "address"  # the address class is refused by the address policy
    ORIGIN = "origin"  # the origin is neither an upstream's nor allow-listed
    HOP_LIMIT = "hop-limit"  # more redirects than the policy's max_hops
    LOOP = "loop"  # a redirect back to a URL already visited
    NO_LOCATION = "no-location"  # a redirect status without a usable Location


class UrlRefused(RoutingError):
    """A URL, address or redirect the policy does not allow. ``detail`` is our own sentence."""

    def __init__(self, rule: Rule, target: str, detail: str) -> None:
        self.rule = rule
        self.target = target
        self.detail = detail
        super().__init__(f"{rule}: {detail}")


class AddressClass(enum.StrEnum):
    PUBLIC = "public"
    PRIVATE = "private"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    METADATA = "metadata"
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"
    RESERVED = "reserved"


@dataclass(frozen=True, slots=True, kw_only=True)
class VettedUrl:
    """A URL that passed :func:`vet_url`: its origin and, for a literal host, its address."""

    url: str  # without fragment
    scheme: str
    host: str  # lower case, IPv6 without brackets
    port: int
    origin: str
    address: IpAddress | None  # the literal address, or None for a DNS name


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectStep:
    """A redirect the policy allows: where to go, how, and with which credentials."""

    url: str
    origin: str
    upstream: str | None  # the configured upstream owning the origin, or None (allow-listed)
    method: str
    drop_credentials: bool  # the origin changed: no Authorization, Cookie, Proxy-Authorization


_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")
_QUERY_CONTROL = re.compile(r"[\x00-\x20\x7f]")  # a backslash in a query is just a byte
_QUERY_START = re.compile(r"[?#]")
_DECODED_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_NUMERIC_PART = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_ENCODED_SEPARATOR = re.compile(r"%(?:2f|5c)", re.IGNORECASE)
_BAD_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")

_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_RESERVED_V4 = ipaddress.ip_network("240.0.0.0/4")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def vet_url(url: str, *, allow_http: bool) -> VettedUrl:
    """Check the shape of an outbound URL. Raises :class:`UrlRefused` naming the rule."""
    start = _QUERY_START.search(url)
    head, tail = (url, "") if start is None else (url[: start.start()], url[start.start() :])
    if _CONTROL.search(head) or _QUERY_CONTROL.search(tail):
        raise UrlRefused(Rule.MALFORMED, url, "control character, space or backslash in the URL")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UrlRefused(Rule.MALFORMED, url, "the URL cannot be parsed") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlRefused(Rule.SCHEME, url, "the scheme must be https or http")
    if scheme == "http" and not allow_http:
        raise UrlRefused(Rule.SCHEME, url, "the policy requires https")
    netloc = parts.netloc
    if "@" in netloc:
        raise UrlRefused(Rule.USERINFO, url, "credentials (userinfo) in the URL")
    host, address = _host(url, netloc)
    try:
        explicit = parts.port
    except ValueError:
        raise UrlRefused(Rule.MALFORMED, url, "invalid port") from None
    if explicit == 0 or netloc.endswith(":"):
        raise UrlRefused(Rule.MALFORMED, url, "invalid port")
    port = explicit if explicit is not None else DEFAULT_PORTS[scheme]
    if parts.path.startswith("//"):
        raise UrlRefused(Rule.MALFORMED, url, "a path that starts with '//'")
    _check_path(url, parts.path)
    clean = parts._replace(fragment="").geturl()
    origin = parse_url(clean).origin  # the one spelling of an origin (routing.urls)
    return VettedUrl(url=clean, scheme=scheme, host=host, port=port, origin=origin, address=address)


def _host(url: str, netloc: str) -> tuple[str, IpAddress | None]:
    hostport = netloc
    if hostport.startswith("["):
        literal, bracket, _ = hostport[1:].partition("]")
        if not bracket or "%" in literal:
            raise UrlRefused(Rule.MALFORMED, url, "invalid IPv6 literal")
        try:
            v6 = ipaddress.IPv6Address(literal)
        except ValueError:
            raise UrlRefused(Rule.MALFORMED, url, "invalid IPv6 literal") from None
        return str(v6), v6
    host = hostport.rpartition(":")[0] if ":" in hostport else hostport
    return host.lower(), vet_host(host.lower(), url)


def vet_host(host: str, url: str) -> ipaddress.IPv4Address | None:
    """Check a lower-case host that is not an IPv6 literal: a DNS name, or a dotted quad
    (returned). The one host rule: outbound URLs and the ``Host`` reflected in public URLs.
    Raises :class:`UrlRefused` (``url`` names the whole target)."""
    if not host:
        raise UrlRefused(Rule.MALFORMED, url, "no host")
    if not host.isascii() or "%" in host:
        raise UrlRefused(Rule.MALFORMED, url, "the host must be plain ASCII (IDNA A-labels)")
    if _DNS_NAME.fullmatch(host) is None:
        raise UrlRefused(Rule.MALFORMED, url, "the host is not a valid name")
    last = host.rstrip(".").rsplit(".", 1)[-1]
    if _NUMERIC_PART.fullmatch(last):
        # WHATWG URL: a host ending in a number is an IPv4 address; only the canonical
        # dotted quad is unambiguous, every other spelling hides an address.
        if _CANONICAL_V4.fullmatch(host) is None:
            raise UrlRefused(Rule.IP_SPELLING, url, "a numeric host that is not a dotted quad")
        return ipaddress.IPv4Address(host)
    return None


def _check_path(url: str, path: str) -> None:
    if not path.isascii():
        raise UrlRefused(Rule.MALFORMED, url, "a path that is not ASCII (percent-encode it)")
    if _BAD_ESCAPE.search(path):
        raise UrlRefused(Rule.MALFORMED, url, "invalid percent escape in the path")
    decoded = path
    for _ in range(4):  # as sent, then decoded once, twice, three times
        if _ENCODED_SEPARATOR.search(decoded):
            raise UrlRefused(Rule.TRAVERSAL, url, "an encoded '/' or '\\' in the path")
        if "\\" in decoded or any(_is_dot_segment(s) for s in decoded.split("/")):
            raise UrlRefused(Rule.TRAVERSAL, url, "a dot segment in the path")
        if _DECODED_CONTROL.search(decoded):
            raise UrlRefused(Rule.MALFORMED, url, "an encoded control character in the path")
        try:
            following = unquote(decoded, errors="strict")
        except UnicodeDecodeError:
            raise UrlRefused(Rule.MALFORMED, url, "percent escapes that are not UTF-8") from None
        if following == decoded:
            return
        decoded = following


def _is_dot_segment(segment: str) -> bool:
    """``.``/``..`` in every spelling a server might resolve (see the module docstring)."""
    bare = segment.partition(";")[0]
    if not bare.isascii():
        bare = unicodedata.normalize("NFKC", bare)
    return "." in bare and bare.strip(". \t") == ""


def classify_address(address: IpAddress) -> AddressClass:
    """The class of one address; an IPv4 address embedded in IPv6 is classed by itself."""
    embedded = _embedded_v4(address)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _classify_plain(address.ipv4_mapped)  # the very same host, by its IPv4 name
    if embedded is not None:
        own = _classify_plain(address)
        inner = _classify_plain(embedded)
        return inner if inner is not AddressClass.PUBLIC else own
    return _classify_plain(address)


def _classify_plain(address: IpAddress) -> AddressClass:
    if address.is_unspecified or (address.version == 4 and address in _THIS_NETWORK):
        return AddressClass.UNSPECIFIED
    if address.is_loopback:
        return AddressClass.LOOPBACK
    if address in _METADATA:
        return AddressClass.METADATA
    if address.is_link_local:
        return AddressClass.LINK_LOCAL
    if address.is_multicast:
        return AddressClass.MULTICAST
    if address.version == 4 and address in _RESERVED_V4:
        return AddressClass.RESERVED
    if address.is_reserved and address.version == 4:
        return AddressClass.RESERVED
    if not address.is_global:
        return AddressClass.PRIVATE
    return AddressClass.PUBLIC


def _embedded_v4(address: IpAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = int(address)
    if packed >> 32 == 0 and packed > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(packed)
    return None


def refusing_class(address: IpAddress, policy: AddressPolicy) -> AddressClass | None:
    """None when ``policy`` allows ``address``, else the class that refused it."""
    candidates: list[IpAddress] = [address]
    embedded = _embedded_v4(address)
    if embedded is not None:
        candidates.append(embedded)
    for network in policy.allowed_networks:
        if any(a.version == network.version and a in network for a in candidates):
            return None
    cls = classify_address(address)
    allowed = {
        AddressClass.PUBLIC: True,
        AddressClass.LOOPBACK: policy.allow_loopback,
        AddressClass.PRIVATE: policy.allow_private,
        AddressClass.LINK_LOCAL: policy.allow_link_local,
    }
    return None if allowed.get(cls, False) else cls


def registered_origins(config: Config) -> dict[str, str]:
    """Origin → name of the first configured upstream that has a base URL there."""
    origins: dict[str, str] = {}
    for upstream in config.upstreams.values():
        for url in upstream.base_urls:
            origins.setdefault(origin_of(url), upstream.name)
    return origins


def decide_redirect(
    *,
    current_url: str,
    current_upstream: str,
    status: int,
    location: str | None,
    method: str,
    hops: int,
    visited: frozenset[str],
    policy: RedirectPolicy,
    registered: Mapping[str, str],
) -> RedirectStep:
    """Whether to follow one redirect, and how. Raises :class:`UrlRefused` naming the rule.

    ``hops`` is the number of redirects already followed; ``visited`` the URLs already
    requested (fragments removed). 303 becomes GET; 301 and 302 turn other methods than
    GET and HEAD into GET (as every browser does); 307 and 308 keep the method.
    """
    if status not in FOLLOWED_STATUSES:
        raise UrlRefused(Rule.NO_LOCATION, current_url, f"status {status} is not a redirect")
    if hops >= policy.max_hops:
        limit = policy.max_hops
        raise UrlRefused(Rule.HOP_LIMIT, current_url, f"more than {limit} redirect(s)")
    if location is None or not location.strip():
        raise UrlRefused(Rule.NO_LOCATION, current_url, "a redirect without a Location")
    if _CONTROL.search(location):
        raise UrlRefused(Rule.MALFORMED, location, "control character or backslash in Location")
    try:
        # Before resolution, which would silently remove plain "../" segments.
        _check_path(location, urlsplit(location).path)
        joined = _resolve(current_url, location)
    except ValueError:
        raise UrlRefused(Rule.MALFORMED, location, "a Location that cannot be parsed") from None
    target = vet_url(joined, allow_http=policy.allow_http)
    if target.url in visited:
        raise UrlRefused(Rule.LOOP, target.url, "a redirect back to a URL already requested")
    current_origin = origin_of(current_url)
    owner = current_upstream if target.origin == current_origin else registered.get(target.origin)
    if owner is None and target.origin not in policy.allowed_origins:
        raise UrlRefused(
            Rule.ORIGIN, target.url, "the target is neither a configured upstream nor allow-listed"
        )
    if status == 303 or (status in {301, 302} and method not in {"GET", "HEAD"}):
        method = "GET"
    return RedirectStep(
        url=target.url,
        origin=target.origin,
        upstream=owner,
        method=method,
        drop_credentials=target.origin != current_origin,
    )


def _resolve(base: str, reference: str) -> str:
    """RFC 3986 §5.2 resolution of a reference already known to hold no dot segment.

    With no dot segment there is nothing to remove, so the reference's path is kept exactly
    as written (``urljoin`` would also drop empty segments). The fragment is left out.
    """
    reference = reference.partition("#")[0]
    if urlsplit(reference).scheme:
        return reference
    parts = urlsplit(base)
    if reference.startswith("//"):
        return f"{parts.scheme}:{reference}"
    path, qmark, query = reference.partition("?")
    if not path:
        return parts._replace(query=query if qmark else parts.query, fragment="").geturl()
    if not path.startswith("/"):
        directory = parts.path[: parts.path.rfind("/") + 1] or "/"
        path = directory + path
    return f"{parts.scheme}://{parts.netloc}{path}{qmark}{query}"
