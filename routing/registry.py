"""The routing registry: from a validated RAD-160 request to exactly one route.

Decision table (MADO Rev 1.1 Appendix XA; design.md §2):

=====================================  ==========================================================
homeCommunityId is another community   RELAY: the path from ``homeCommunityId/`` on and the query,
                                       unchanged, to that community's responding gateway
homeCommunityId is ours, retrieveurl   RETRIEVE_URL: ``studies/…`` below the Retrieve URL, when
                                       the URL policy admits its origin; refused otherwise
homeCommunityId is ours                SOURCE: ``studies/…`` below the base URL of the Imaging
                                       Document Source configured for the Retrieve Location UID
=====================================  ==========================================================

XCA-I (RAD-69, RAD-75) routes by the same tables, one DocumentRequest at a time:
:meth:`Registry.community` gives the responding gateway of a homeCommunityId and
:meth:`Registry.repository` the Imaging Document Source of a repositoryUniqueId, which is the
Retrieve Location UID a ``sources`` entry is keyed by (xcai-digest.md §7). Either upstream may
speak DICOMweb or SOAP; the caller chooses the leg by :attr:`Upstream.protocol`, and
:meth:`Registry.resolve` likewise returns a RAD-160 route to a ``rad-75`` or ``rad-69``
upstream for the RAD-160 handler to bridge.

Lookups are dictionary reads: O(1), no I/O. A registry never changes; reloading builds a new one.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from routing.errors import RetrieveUrlRefused, UnknownCommunity, UnknownSource
from routing.ids import HomeCommunityId, Oid
from routing.model import Config, Identity, Protocol, Upstream, origin_of
from routing.rad160 import Rad160Request
from routing.urls import DEFAULT_PORTS, parse_url

__all__ = ["RETRIEVE_URL_UPSTREAM", "Registry", "Route", "RouteKind", "normalise_retrieve_url"]

RETRIEVE_URL_UPSTREAM = "retrieveurl"
"""Upstream name (and metric label) for an allow-listed origin that is not a configured upstream."""


class RouteKind(enum.StrEnum):
    RELAY = "relay"
    SOURCE = "source"
    RETRIEVE_URL = "retrieve-url"


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where one request goes: an upstream, the base URLs to try in order, and what to append.

    For a SOAP upstream (``rad-69``, ``rad-75``) ``path`` and ``query`` are the RAD-160
    request's, which a bridge reads instead of appending: its base URLs are endpoints.
    """

    kind: RouteKind
    upstream: Upstream
    base_urls: tuple[str, ...]
    path: str
    query: str

    def urls(self) -> Iterator[tuple[str, str]]:
        """Yield ``(base_url, full_url)`` in failover order."""
        suffix = f"{self.path}?{self.query}" if self.query else self.path
        for base in self.base_urls:
            yield base, base + suffix


class Registry:
    """Immutable routing tables built from one :class:`Config`."""

    __slots__ = ("_by_origin", "_communities", "_repositories", "config")

    def __init__(self, config: Config) -> None:
        self.config = config
        upstreams = config.upstreams
        by_origin: dict[str, Upstream] = {}
        for upstream in upstreams.values():
            # A retrieveurl names a DICOMweb base: only wado-rs origins stand for one.
            if upstream.protocol is Protocol.WADO_RS:
                for origin in upstream.origins:
                    by_origin.setdefault(origin, upstream)
        self._by_origin = by_origin
        self._communities = {hcid: upstreams[name] for hcid, name in config.communities.items()}
        self._repositories = {oid: upstreams[name] for oid, name in config.sources.items()}

    @property
    def identity(self) -> Identity:
        return self.config.identity

    def community(self, home_community_id: HomeCommunityId) -> Upstream:
        """The responding gateway configured for another community (``xc-wado`` or ``rad-75``).

        This gateway's own community is never configured (the loader refuses it): the caller
        answers it locally before asking. Raises :class:`UnknownCommunity`.
        """
        upstream = self._communities.get(home_community_id)
        if upstream is None:
            raise UnknownCommunity(home_community_id)
        return upstream

    def repository(self, repository_id: Oid) -> Upstream:
        """The Imaging Document Source of an XDS-I.b repositoryUniqueId, the Retrieve Location
        UID its ``sources`` entry is keyed by (``wado-rs`` or ``rad-69``). Raises
        :class:`UnknownSource`.
        """
        upstream = self._repositories.get(repository_id)
        if upstream is None:
            raise UnknownSource(repository_id)
        return upstream

    def resolve(self, request: Rad160Request) -> Route:
        """Route a RAD-160 request.

        Raises :class:`UnknownCommunity`, :class:`UnknownSource` or :class:`RetrieveUrlRefused`.
        """
        if request.home_community_id != self.identity.home_community_id:
            return self._relay(request)
        if request.retrieve_url is not None:
            return self._retrieve_url(request, request.retrieve_url)
        upstream = self.repository(request.retrieve_location_uid)
        return _configured(RouteKind.SOURCE, upstream, request.resource_path, request.source_query)

    def _relay(self, request: Rad160Request) -> Route:
        upstream = self.community(request.home_community_id)
        return _configured(RouteKind.RELAY, upstream, request.relay_path, request.raw_query)

    def _retrieve_url(self, request: Rad160Request, retrieve_url: str) -> Route:
        base = normalise_retrieve_url(retrieve_url)
        origin = origin_of(base)
        policy = self.config.url_policy
        upstream = self._by_origin.get(origin) if policy.allow_upstream_origins else None
        if upstream is None and origin not in policy.allowed_origins:
            raise RetrieveUrlRefused(base, "origin not on the allow-list")
        if upstream is None:
            # An allow-listed origin that is no configured upstream: default timeouts and TLS,
            # and the configuration's top-level address policy.
            upstream = Upstream(
                name=RETRIEVE_URL_UPSTREAM,
                protocol=Protocol.WADO_RS,
                base_urls=(base,),
                address_policy=self.config.address_policy,
            )
        return Route(
            kind=RouteKind.RETRIEVE_URL,
            upstream=upstream,
            base_urls=(base,),
            path=request.resource_path,
            query=request.source_query,
        )


def _configured(kind: RouteKind, upstream: Upstream, path: str, query: str) -> Route:
    return Route(kind=kind, upstream=upstream, base_urls=upstream.base_urls, path=path, query=query)


def normalise_retrieve_url(value: str) -> str:
    """Turn a manifest's Retrieve URL into an absolute base URL ending in ``/``.

    A value without a scheme (``hostname/dicom-web-rs/`` in MADO Figure XA-4) gets ``https://``.
    Raises :class:`RetrieveUrlRefused` for other schemes, credentials, a query or a fragment.
    """
    text = value if "://" in value else f"https://{value}"
    try:
        url = parse_url(text)
    except ValueError:  # a malformed "[…]" host, an invalid port
        raise RetrieveUrlRefused(value, "not a URL") from None
    if url.scheme not in DEFAULT_PORTS:
        raise RetrieveUrlRefused(value, "scheme must be https or http")
    if not url.host:
        raise RetrieveUrlRefused(value, "not an absolute URL")
    if url.userinfo:
        raise RetrieveUrlRefused(value, "credentials in the URL")
    if url.query or url.fragment:
        raise RetrieveUrlRefused(value, "query or fragment in the URL")
    path = url.path if url.path.endswith("/") else url.path + "/"
    return f"{url.scheme}://{url.netloc}{path}"
