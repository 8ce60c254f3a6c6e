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
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import urlsplit

from routing.ids import HomeCommunityId, Oid

__all__ = [
    "Config",
    "Identity",
    "Limits",
    "Protocol",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """A named peer: one or more base URLs tried in order until one answers."""

    name: str
    protocol: Protocol
    base_urls: tuple[str, ...]  # absolute, each ending in "/"
    tls: TlsProfile = field(default_factory=TlsProfile)
    timeouts: Timeouts = field(default_factory=Timeouts)
    limits: Limits = field(default_factory=Limits)

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

    def __post_init__(self) -> None:
        # Read-only views, so a Config handed around cannot be changed behind the registry.
        for name in ("upstreams", "communities", "sources"):
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
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"
