"""One HTTP client session per configured upstream.

Each :class:`~routing.model.Upstream` value gets its own ``aiohttp.ClientSession``: its own
connection pool (``limits``), its own TLS context (``tls``) and its own timeouts. Sessions are
keyed by the upstream's value, so a reload that leaves an upstream unchanged keeps its warm
connections, and one that changes it gets a fresh session. Sessions of upstreams that a reload
removed are retired: closed once the last stream using them has finished, never under it.

Client settings common to all sessions, and why:

* ``auto_decompress=False`` — bytes are relayed as the upstream sent them.
* no total timeout — a stream is bounded by idle-read and connect timeouts only.
* ``read_bufsize`` — the upstream socket is paused when this much is buffered and unread,
  which is how a slow consumer slows the upstream down instead of growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable, Iterator

import aiohttp

from routing.model import TlsProfile, Upstream

__all__ = ["UpstreamPool", "tls_context"]

USER_AGENT = "mado-gateway"


def tls_context(profile: TlsProfile) -> ssl.SSLContext:
    """Client TLS context for one upstream: verify the peer, TLS 1.2 or later, optional mTLS."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=profile.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if profile.cert_file and profile.key_file:
        context.load_cert_chain(profile.cert_file, profile.key_file)
    return context


class UpstreamPool:
    """Client sessions by upstream, with leases so a retired session closes only when idle."""

    def __init__(self, *, read_bufsize: int) -> None:
        self._read_bufsize = read_bufsize
        self._sessions: dict[Upstream, aiohttp.ClientSession] = {}
        self._leases: dict[aiohttp.ClientSession, int] = {}
        self._retired: set[aiohttp.ClientSession] = set()
        self._closing: set[asyncio.Task[None]] = set()

    @contextlib.contextmanager
    def lease(self, upstream: Upstream) -> Iterator[aiohttp.ClientSession]:
        """The session for ``upstream``, held for the duration of one exchange."""
        session = self._sessions.get(upstream)
        if session is None or session.closed:
            session = self._sessions[upstream] = self._new_session(upstream)
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
        """Keep sessions for ``upstreams``; retire every other one (after a reload)."""
        keep = set(upstreams)
        for upstream in [u for u in self._sessions if u not in keep]:
            session = self._sessions.pop(upstream)
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

    def _new_session(self, upstream: Upstream) -> aiohttp.ClientSession:
        needs_tls = any(url.startswith("https:") for url in upstream.base_urls)
        connector = aiohttp.TCPConnector(
            limit=upstream.limits.max_connections,
            keepalive_timeout=upstream.limits.keepalive_s,
            ssl=tls_context(upstream.tls) if needs_tls else True,
        )
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
        )

    def _close_soon(self, session: aiohttp.ClientSession) -> None:
        task = asyncio.get_running_loop().create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
