"""The directory look-up: a FHIR search per unknown key, answers cached, one search per key.

:class:`Directory` is asked only for what the static registry does not name (the handler
catches :class:`~routing.errors.UnknownSource` or :class:`~routing.errors.UnknownCommunity`
and tries :meth:`Directory.resolve`); the registry stays pure and synchronous.

* An answer is kept ``ttl_s`` seconds, a "not found" ``negative_ttl_s``; at most
  ``max_entries`` of each (:mod:`.cache`). An entry added to the directory becomes routable
  once a "not found" has expired; one removed stops being routable once its answer has.
* Concurrent look-ups of one key share one search; a request that gives up waiting does not
  cancel the search the others wait for.
* A search that fails (connection, timeout, a status other than 200, an answer that is no
  Bundle) caches nothing and raises :class:`DirectoryUnavailable` (503): a cached answer
  keeps serving during an outage only while it is fresh.
* Every address a directory returns becomes an upstream through
  :func:`routing.directory.derived_upstream` (the URL rules of a configured base URL; an
  entry whose every address they refuse is logged, counted as ``refused`` and cached as "not
  found"); the relay applies its address policy at connection time as for any upstream.
  When no cached answer names an upstream any more, its session in the
  :class:`UpstreamPool` is retired.
* The directory itself is reached through its own session: its TLS profile, its address
  policy (checked for literal addresses here, and by a :class:`PolicyResolver` for names),
  a connect and a total timeout, and an answer of at most :data:`MAX_ANSWER_BYTES`.

A reload that changes the ``directory`` section drops every cached answer.

Errors::

    GatewayError (gateway.errors)
     └── DirectoryUnavailable  503 directory-unavailable: the directory could not answer and
                               no fresh answer was cached
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import ssl
import time
from collections.abc import Callable
from enum import StrEnum

import aiohttp
from yarl import URL

from gateway.directory.cache import Answers
from gateway.directory.fhir import (
    community_addresses,
    community_search,
    source_addresses,
    source_search,
)
from gateway.directory.metrics import DirectoryMetrics
from gateway.errors import GatewayError
from gateway.relay.addresses import AddressBlocked, PolicyResolver, check_literal
from gateway.relay.tls import client_context
from gateway.relay.upstream import USER_AGENT, UpstreamPool
from routing.directory import DirectorySettings, derived_upstream
from routing.errors import UnknownCommunity, UnknownSource
from routing.ids import HomeCommunityId, Oid
from routing.model import Protocol, Upstream
from routing.rad160 import Rad160Request
from routing.registry import Registry, Route, RouteKind
from routing.urlpolicy import UrlRefused, vet_url

__all__ = ["MAX_ANSWER_BYTES", "Directory", "DirectoryUnavailable"]

log = logging.getLogger("mado_gateway.directory")

MAX_ANSWER_BYTES = 1024 * 1024
"""A directory answer longer than this is refused (a search for one key is small)."""


class DirectoryUnavailable(GatewayError):
    """The directory could not answer and no fresh answer was cached."""

    status = 503
    slug = "directory-unavailable"

    def __init__(self, kind: str, reason: str) -> None:
        self.kind = kind
        self.reason = reason  # a bounded metric label (metrics.ERROR_REASONS)
        super().__init__(f"the endpoint directory could not be searched ({reason})")


class _Kind(StrEnum):
    SOURCE = "source"
    COMMUNITY = "community"


_Key = tuple[_Kind, str]
_Found = Upstream | None  # None: the directory has no such entry


class _SearchFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Directory:
    """Directory-backed resolution for one gateway process; see the module docstring.

    ``pool`` is the relay's upstream pool (sessions of derived upstreams are retired from it);
    ``timer`` is monotonic seconds (a test may pass its own).
    """

    def __init__(
        self,
        *,
        pool: UpstreamPool,
        metrics: DirectoryMetrics,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._timer = timer
        self._settings: DirectorySettings | None = None
        self._session: aiohttp.ClientSession | None = None
        self._found: Answers[_Key, Upstream] = Answers(1, 1, timer=timer, on_leave=self._left)
        self._missing: Answers[_Key, None] = Answers(1, 1, timer=timer, on_leave=_nothing)
        self._pending: dict[_Key, asyncio.Task[_Found]] = {}
        self._users: collections.Counter[Upstream] = collections.Counter()

    async def resolve(self, registry: Registry, request: Rad160Request) -> Route:
        """The route for a RAD-160 request the registry could not route for want of an
        entry. Raises :class:`UnknownSource` or :class:`UnknownCommunity` when the registry
        has no directory or the directory has no entry, :class:`DirectoryUnavailable` when
        the directory cannot be searched."""
        settings = registry.config.directory
        own = registry.identity.home_community_id
        if request.home_community_id != own:
            if settings is None:
                raise UnknownCommunity(request.home_community_id)
            upstream = await self.community(settings, request.home_community_id)
            return _route(RouteKind.RELAY, upstream, request.relay_path, request.raw_query)
        if settings is None or request.retrieve_url is not None:
            raise UnknownSource(request.retrieve_location_uid)
        upstream = await self.source(settings, request.retrieve_location_uid)
        return _route(RouteKind.SOURCE, upstream, request.resource_path, request.source_query)

    async def source(self, settings: DirectorySettings, rluid: Oid) -> Upstream:
        """The Imaging Document Source of ``rluid`` (``wado-rs``). Raises
        :class:`UnknownSource` or :class:`DirectoryUnavailable`."""
        found = await self._look_up(settings, (_Kind.SOURCE, str(rluid)))
        if found is None:
            raise UnknownSource(rluid)
        return found

    async def community(self, settings: DirectorySettings, hcid: HomeCommunityId) -> Upstream:
        """The responding gateway of ``hcid`` (``xc-wado``). Raises
        :class:`UnknownCommunity` or :class:`DirectoryUnavailable`."""
        found = await self._look_up(settings, (_Kind.COMMUNITY, str(hcid)))
        if found is None:
            raise UnknownCommunity(hcid)
        return found

    async def close(self) -> None:
        """Close the directory session and let every cached answer go."""
        session, self._session = self._session, None
        self._configure(None)
        for task in list(self._pending.values()):
            task.cancel()
        if session is not None:
            await session.close()

    # -- the cache -------------------------------------------------------------------------

    async def _look_up(self, settings: DirectorySettings, key: _Key) -> _Found:
        if settings != self._settings:
            self._configure(settings)
        kind = key[0].value
        for answers, answer in ((self._found, "found"), (self._missing, "not-found")):
            cached = answers.fresh(key)
            if cached is not None:
                self._metrics.hits.labels(kind, answer).inc()
                self._metrics.entry_age.labels(kind).observe(self._timer() - cached.fetched_at)
                return cached.value
        task = self._pending.get(key)
        if task is None:
            self._metrics.misses.labels(kind).inc()
            task = asyncio.ensure_future(self._fetch(settings, key))
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        # shield: a request that goes away does not cancel the search others wait for.
        return await asyncio.shield(task)

    async def _fetch(self, settings: DirectorySettings, key: _Key) -> _Found:
        kind, identifier = key
        try:
            found = await self._search(settings, kind, identifier)
        except _SearchFailed as failure:
            self._metrics.errors.labels(kind.value, failure.reason).inc()
            raise DirectoryUnavailable(kind.value, failure.reason) from None
        if settings is self._settings:  # not a search started before a reload
            if found is None:
                self._missing.store(key, None)
            else:
                self._users[_session_key(found)] += 1
                self._found.store(key, found)
            self._count_entries()
        return found

    def _configure(self, settings: DirectorySettings | None) -> None:
        self._found.drop_all()
        self._missing.drop_all()
        self._settings = settings
        if self._session is not None:
            asyncio.get_running_loop().create_task(self._session.close())
            self._session = None
        if settings is not None:
            size = settings.max_entries
            self._found = Answers(size, settings.ttl_s, timer=self._timer, on_leave=self._left)
            self._missing = Answers(
                size, settings.negative_ttl_s, timer=self._timer, on_leave=_nothing
            )
        self._count_entries()

    def _left(self, upstream: Upstream) -> None:
        key = _session_key(upstream)
        self._users[key] -= 1
        if self._users[key] <= 0:
            del self._users[key]
            self._pool.retire(upstream)

    def _count_entries(self) -> None:
        self._metrics.entries.labels("found").set(len(self._found))
        self._metrics.entries.labels("not-found").set(len(self._missing))

    # -- the search ------------------------------------------------------------------------

    async def _search(self, settings: DirectorySettings, kind: _Kind, identifier: str) -> _Found:
        if kind is _Kind.SOURCE:
            url = source_search(settings.base_url, identifier)
        else:
            url = community_search(settings.base_url, identifier)
        bundle = await self._get(settings, url)
        try:
            if kind is _Kind.SOURCE:
                addresses = source_addresses(bundle, identifier)
            else:
                addresses = community_addresses(bundle, identifier)
        except ValueError:
            raise _SearchFailed("invalid") from None
        if not addresses:
            return None
        protocol = Protocol.WADO_RS if kind is _Kind.SOURCE else Protocol.XC_WADO
        upstreams = []
        for address in addresses:
            try:
                upstreams.append(derived_upstream(settings, address, protocol))
            except (UrlRefused, ValueError):
                log.warning(
                    "directory address refused by the URL policy",
                    extra={"kind": kind.value, "identifier": identifier},
                )
        if not upstreams:
            # Cached as "not found": a directory entry the URL rules refuse routes nowhere,
            # and is not searched again on every request.
            self._metrics.errors.labels(kind.value, "refused").inc()
            return None
        bases = tuple(base for upstream in upstreams for base in upstream.base_urls)
        return dataclasses.replace(upstreams[0], base_urls=bases)

    async def _get(self, settings: DirectorySettings, url: str) -> object:
        try:
            check_literal(vet_url(url, allow_http=True), settings.address_policy)
        except (UrlRefused, AddressBlocked):
            raise _SearchFailed("refused") from None
        session = self._session_for(settings)
        try:
            async with session.get(
                URL(url, encoded=True), headers={"Accept": "application/fhir+json"}
            ) as answer:
                if answer.status != 200:
                    raise _SearchFailed("status")
                body = await answer.content.read(MAX_ANSWER_BYTES + 1)
                while len(body) <= MAX_ANSWER_BYTES and not answer.content.at_eof():
                    more = await answer.content.read(MAX_ANSWER_BYTES + 1 - len(body))
                    if not more:
                        break
                    body += more
        except TimeoutError:
            raise _SearchFailed("timeout") from None
        except aiohttp.ClientConnectorDNSError as exc:
            reason = "refused" if isinstance(exc.os_error, AddressBlocked) else "connect"
            raise _SearchFailed(reason) from None
        except (aiohttp.ClientError, ssl.SSLError, OSError):
            raise _SearchFailed("connect") from None
        if len(body) > MAX_ANSWER_BYTES:
            raise _SearchFailed("invalid")
        try:
            return json.loads(body)
        except ValueError:
            raise _SearchFailed("invalid") from None

    def _session_for(self, settings: DirectorySettings) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=32,
                ssl=client_context(settings.tls),
                resolver=PolicyResolver(settings.address_policy),
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=settings.request_s, sock_connect=settings.connect_s
                ),
                headers={"User-Agent": USER_AGENT},
                auto_decompress=True,
            )
        return self._session


def _route(kind: RouteKind, upstream: Upstream, path: str, query: str) -> Route:
    return Route(kind=kind, upstream=upstream, base_urls=upstream.base_urls, path=path, query=query)


def _session_key(upstream: Upstream) -> Upstream:
    """What the pool keys a session by: the upstream with its origins for base URLs."""
    return dataclasses.replace(upstream, base_urls=tuple(sorted(upstream.origins)))


def _nothing(_: None) -> None:
    """A "not found" holds no upstream: nothing to retire when it leaves."""
