"""The routing configuration as frozen values.

Built once by :mod:`routing.loader` from an operator's YAML or JSON file and never mutated:
a reload builds a new :class:`Config` and a new registry and swaps them whole. Everything is
hashable except :class:`Config` itself (it holds mappings), so an :class:`Upstream` can key a
connection pool. Durations are seconds and end in ``_s``.

The shape follows Envoy's route → cluster split: ``communities`` and ``sources`` name an
upstream; the upstream (base URLs in failover order, TLS, timeouts, limits) is defined once.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from routing.ids import HomeCommunityId, Oid

__all__ = [
    "AddressPolicy",
    "Config",
    "Identity",
    "Limits",
    "Protocol",
    "RedirectPolicy",
    "Timeouts",
    "TlsProfile",
    "Upstream",
    "UrlPolicy",
    "origin_of",
]


class Protocol(enum.StrEnum):
    """What an upstream speaks."""

    WADO_RS = "wado-rs"  # an Imaging Document Source (RAD-107)
    XC_WADO = "xc-wado"  # another community's responding gateway (RAD-160)
    RAD_69 = "rad-69"  # an Imaging Document Source over SOAP
    RAD_75 = "rad-75"  # another community's responding gateway over SOAP


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsProfile:
    """How to verify an upstream and, for mutual TLS, how to present ourselves to it."""

    ca_file: str | None = None  # None: the system trust store
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Connect and idle-read timeouts. There is deliberately no total deadline: a 10 GB study
    that keeps flowing must not be cut; one that stops flowing for ``read_idle_s`` is."""

    connect_s: float = 5.0
    read_idle_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Connection pool limits for one upstream.

    ``keepalive_s`` is how long an idle pooled connection is kept for reuse. It must stay
    below the upstream's own keep-alive timeout, or a request may be written on a connection
    the upstream has just closed (Orthanc closes idle connections after one second).
    """

    max_connections: int = 100
    keepalive_s: float = 0.5


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressPolicy:
    """Which resolved addresses an outbound connection may reach (design.md §5).

    Public (globally routable) addresses are always allowed. Every other class is refused
    unless a flag opens it: loopback (127.0.0.0/8, ::1), private (RFC 1918, unique-local
    fc00::/7, shared 100.64.0.0/10 and the other non-global ranges), link-local
    (169.254.0.0/16, fe80::/10). Cloud metadata, multicast, unspecified and reserved addresses
    have no flag: only ``allowed_networks`` (CIDR blocks admitted whatever their class) opens
    them. The default refuses everything that is not public.
    """

    allow_loopback: bool = False
    allow_private: bool = False
    allow_link_local: bool = False
    allowed_networks: tuple[IpNetwork, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectPolicy:
    """How an upstream's redirects are followed (Envoy's internal redirect policy, stricter).

    At most ``max_hops`` redirects (0: none is followed); the target must be https unless
    ``allow_http``; its origin must be a configured upstream's or in ``allowed_origins``
    (``scheme://host:port``, as :func:`origin_of` writes it).
    """

    max_hops: int = 2
    allow_http: bool = False
    allowed_origins: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """A named peer: one or more base URLs tried in order until one answers.

    ``forward_authorization``: the consumer's ``Authorization`` header is sent to this
    upstream (never across a redirect to another origin). Off by default: a token meant for
    one community does not travel to another unless an operator says so.
    """

    name: str
    protocol: Protocol
    base_urls: tuple[str, ...]  # absolute, each ending in "/"
    tls: TlsProfile = field(default_factory=TlsProfile)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)
    redirects: RedirectPolicy = field(default_factory=RedirectPolicy)
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)
    forward_authorization: bool = False

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(origin_of(url) for url in self.base_urls)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who this gateway is: its community and its identity in audit messages."""

    home_community_id: HomeCommunityId
    audit_source_id: str
    enterprise_site_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlPolicy:
    """Which origins a caller-supplied ``retrieveurl`` may reach.

    An origin is ``scheme://host:port`` in lower case with the port always written.
    ``allow_upstream_origins`` also admits the origins of configured ``wado-rs`` upstreams.
    The default policy admits nothing: Retrieve URL mode is off until an operator opens it.
    """

    allowed_origins: frozenset[str] = frozenset()
    allow_upstream_origins: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """One complete, validated routing configuration."""

    identity: Identity
    upstreams: Mapping[str, Upstream]
    communities: Mapping[HomeCommunityId, str]  # -> upstream name
    sources: Mapping[Oid, str]  # Retrieve Location UID -> upstream name
    url_policy: UrlPolicy = field(default_factory=UrlPolicy)
    # Opaque location identifier in manifests (``ACME``) -> the Retrieve Location UID it names.
    location_aliases: Mapping[str, Oid] = field(default_factory=dict)
    # For targets that are no configured upstream (retrieveurl, allow-listed redirects);
    # each upstream carries its own (the loader copies this one when it names none).
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)

    def __post_init__(self) -> None:
        # Read-only views, so a Config handed around cannot be changed behind the registry.
        for name in ("upstreams", "communities", "sources", "location_aliases"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))


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
