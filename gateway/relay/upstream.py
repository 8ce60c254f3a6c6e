"""One HTTP client session per configured upstream.

Each :class:`~routing.model.Upstream` value gets its own ``aiohttp.ClientSession``: its own
connection pool (``limits``), its own TLS context (``tls``), its own timeouts and its own
address policy (a :class:`~gateway.relay.addresses.PolicyResolver` on its connector, so every
connection goes to an address that was checked). TLS contexts are built when a
configuration is loaded (:meth:`UpstreamPool.retain`), one per TLS profile. Sessions are
keyed by the upstream's value, so a reload that leaves an upstream unchanged keeps its warm
connections, and one that changes it gets a fresh session. Sessions of upstreams that a reload
removed are retired: closed once the last stream using them has finished, never under it.

Client settings common to all sessions, and why:

* ``auto_decompress=False`` — bytes are relayed as the upstream sent them.
* no total timeout — a stream is bounded by idle-read and connect timeouts only.
* ``read_bufsize`` — the upstream socket is paused when this much is buffered and unread,
  which is how a slow consumer slows the upstream down instead of growing memory.
* ``response_class=UpstreamAnswer`` — each answer keeps its connection's protocol, so how a
  close-delimited body ended can be told afterwards (:mod:`gateway.relay.bodyend`), and a
  connection that carried an answer without a body (1xx, 204, 304) is never reused.
* connections whose answers the relay may read below aiohttp (:mod:`gateway.relay.takeover`:
  ``SplitHandler`` protocols, ``request_class=SplitRequest``); an answer the relay does not
  take is read the ordinary way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import Iterable, Iterator

import aiohttp
from aiohttp.client_proto import ResponseHandler

from gateway.relay.addresses import PolicyResolver
from gateway.relay.takeover import SplitHandler, SplitRequest, install
from gateway.relay.tls import client_context
from routing.model import TlsProfile, Upstream
from routing.urls import parse_url

__all__ = ["UpstreamAnswer", "UpstreamPool", "loggable_base", "tls_context"]

USER_AGENT = "mado-gateway"
log = logging.getLogger("mado_gateway.upstream")
tls_context = client_context  # the name this module exported first


class UpstreamAnswer(aiohttp.ClientResponse):
    """An upstream answer that keeps the protocol of its connection (``upstream_protocol``).

    aiohttp hands the connection back (and forgets it) as soon as a body has ended; the
    protocol object outlives that and still says how the connection ended.

    An answer that has no body by its status (1xx, 204, 304) closes its connection instead:
    it may still have announced one (a ``Content-Length`` on a 304 is even legitimate), and
    any bytes that follow would be read as the answer to the next request sent on that
    connection.
    """

    upstream_protocol: ResponseHandler | None = None

    async def start(self, connection: aiohttp.connector.Connection) -> aiohttp.ClientResponse:
        protocol = self.upstream_protocol = connection.protocol
        answer = await super().start(connection)
        # A held answer (takeover) is the relay's only when it may pass its body through;
        # every other is read the ordinary way from here on.
        if isinstance(protocol, SplitHandler) and protocol.holding and not self._relayable():
            protocol.release()
        # aiohttp has already pooled the connection of a body-less answer; with no await
        # since, nobody can have taken it, and a closed one is never handed out.
        if protocol is not None and (self.status < 200 or self.status in (204, 304)):
            protocol.close()
        return answer

    def _relayable(self) -> bool:
        return self.method == "GET" and 200 <= self.status < 300 and self.status != 204


def loggable_base(url: str) -> str:
    """``scheme://host:port/base/path/`` of a base URL, for logs: never credentials, a query or
    a fragment (a base URL carries no study path; it is what comes before one)."""
    try:
        parsed = parse_url(url)
        return parsed.origin + parsed.path
    except ValueError:
        return "(unreadable URL)"


_MAX_KEYS = 1024


def _session_key(upstream: Upstream) -> Upstream:
    """What a session depends on: the upstream without the paths of its base URLs.

    A Retrieve URL or redirect target is an ad-hoc upstream whose base URL carries a path;
    keyed by origin, all of them share one session per origin instead of one per path.
    """
    return dataclasses.replace(upstream, base_urls=tuple(sorted(upstream.origins)))


class UpstreamPool:
    """Client sessions by upstream, with leases so a retired session closes only when idle."""

    def __init__(self, *, read_bufsize: int) -> None:
        self._read_bufsize = read_bufsize
        self._sessions: dict[Upstream, aiohttp.ClientSession] = {}
        self._leases: dict[aiohttp.ClientSession, int] = {}
        self._retired: set[aiohttp.ClientSession] = set()
        self._closing: set[asyncio.Task[None]] = set()
        self._contexts: dict[TlsProfile, ssl.SSLContext] = {}
        # upstream -> its session key: building one (dataclasses.replace) cost more than the
        # rest of a lease; bounded, as ad-hoc upstreams (Retrieve URLs) come and go
        self._keys: dict[Upstream, Upstream] = {}

    @contextlib.contextmanager
    def lease(self, upstream: Upstream) -> Iterator[aiohttp.ClientSession]:
        """The session for ``upstream``, held for the duration of one exchange."""
        key = self._keys.get(upstream)
        if key is None:
            if len(self._keys) >= _MAX_KEYS:
                self._keys.clear()
            key = self._keys[upstream] = _session_key(upstream)
        session = self._sessions.get(key)
        if session is None or session.closed:
            session = self._sessions[key] = self._new_session(key)
        self._leases[session] = self._leases.get(session, 0) + 1
        try:
            yield session
        finally:
            self._leases[session] -= 1
            if not self._leases[session]:
                del self._leases[session]
                if session in self._retired:
                    self._retired.discard(session)
                    self._close_soon(session)

    def retain(self, upstreams: Iterable[Upstream]) -> None:
        """Keep sessions for ``upstreams``; retire every other one (at start and after a reload).

        The TLS context of every upstream is built here, once per profile, so a reload pays
        for it up front; contexts of profiles no longer used are dropped.
        """
        keep = {_session_key(u) for u in upstreams}
        contexts = {}
        for upstream in keep:
            if upstream.tls not in contexts:
                try:
                    contexts[upstream.tls] = self._contexts.get(upstream.tls) or client_context(
                        upstream.tls
                    )
                except (ssl.SSLError, OSError) as exc:
                    log.error(
                        "TLS profile cannot be loaded",
                        extra={"upstream": upstream.name, "error": str(exc)},
                    )
        self._contexts = contexts
        for upstream in [u for u in self._sessions if u not in keep]:
            session = self._sessions.pop(upstream)
            if self._leases.get(session):
                self._retired.add(session)
            else:
                self._close_soon(session)

    def __len__(self) -> int:
        """Sessions held for new leases (retired ones closing are not counted)."""
        return len(self._sessions)

    def retire(self, upstream: Upstream) -> None:
        """Retire the session of one upstream that is no configured one (a directory entry
        no answer names any more): closed once its last lease has ended; a later lease opens
        a new one. Keeps the pool bounded by what is still named."""
        session = self._sessions.pop(_session_key(upstream), None)
        if session is None:
            return
        if self._leases.get(session):
            self._retired.add(session)
        else:
            self._close_soon(session)

    async def close(self) -> None:
        sessions = [*self._sessions.values(), *self._retired]
        self._sessions.clear()
        self._retired.clear()
        for session in sessions:
            await session.close()

    def _context(self, profile: TlsProfile) -> ssl.SSLContext:
        context = self._contexts.get(profile)
        if context is None:  # an ad-hoc upstream (Retrieve URL, redirect target)
            context = self._contexts[profile] = client_context(profile)
        return context

    def _new_session(self, upstream: Upstream) -> aiohttp.ClientSession:
        # Every session verifies TLS with its profile's context: a redirect may lead an
        # http upstream's request to an https origin.
        connector = aiohttp.TCPConnector(
            limit=upstream.limits.max_connections,
            keepalive_timeout=upstream.limits.keepalive_s,
            ssl=self._context(upstream.tls),
            resolver=PolicyResolver(upstream.address_policy),
        )
        install(connector)
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=upstream.timeouts.connect_s,
            sock_read=upstream.timeouts.read_idle_s,
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            read_bufsize=self._read_bufsize,
            headers={"User-Agent": USER_AGENT},
            raise_for_status=False,
            response_class=UpstreamAnswer,
            request_class=SplitRequest,
        )

    def _close_soon(self, session: aiohttp.ClientSession) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
