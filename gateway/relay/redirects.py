"""The redirect loop of one upstream attempt, under the upstream's redirect policy (design.md §5).

aiohttp's own redirect following is off (``allow_redirects=False``); :class:`Follower` does it
instead, one hop at a time, with every decision taken by :mod:`routing.urlpolicy`:

* only 301, 302, 303, 307 and 308, at most ``redirects.max_hops`` of them, no URL twice;
* the target is https unless the policy allows http, and its origin is a configured
  upstream's or on the policy's allow-list; a target that is a configured upstream is
  requested with that upstream's session (its TLS profile and address policy), any other
  with an ad-hoc session under the configuration's top-level address policy;
* 303 turns into GET; Authorization, Cookie and Proxy-Authorization are dropped as soon as
  the origin changes, and stay dropped;
* the upstream's configured credential (``auth``) is added to each request whose origin is
  one of the upstream's own — replacing any ``Authorization`` — and to no other: not to a
  redirect target elsewhere, not to another upstream a redirect leads to, not to a Retrieve
  URL outside the upstream's origins. An upstream that answers it with 401 or 407 is logged
  as an error naming where the credential came from, never the credential;
* every URL, the first included, is checked against the address policy before it is
  requested: a literal address here, a host name by the session's resolver.

A refusal is :class:`~gateway.errors.RedirectNotFollowed` (502, naming the rule) or, for the
first URL, :class:`~gateway.errors.AddressRefused`. The follower counts and reports nothing
itself: it records every redirect answer on the exchange's :class:`~gateway.exchange.Leg`
(a :class:`~gateway.exchange.Hop`, followed or refused under its rule) and every refused
target (a :class:`~gateway.exchange.Refusal`); the metrics and security sinks derive their
counters and alerts from those. The upstream's body of a redirect is never read.
"""

from __future__ import annotations

import contextlib
import logging

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from gateway.errors import AddressRefused, RedirectNotFollowed
from gateway.exchange import Hop, Leg, Refusal, RefusalKind
from gateway.relay.addresses import AddressBlocked, check_literal
from gateway.relay.upstream import UpstreamPool
from routing.model import Config, Protocol, Upstream, origin_of
from routing.urlpolicy import (
    FOLLOWED_STATUSES,
    Rule,
    UrlRefused,
    decide_redirect,
    registered_origins,
    vet_url,
)

__all__ = ["CREDENTIAL_HEADERS", "REDIRECT_UPSTREAM", "Follower"]

REDIRECT_UPSTREAM = "redirect"
"""Upstream name (and metric label) for an allow-listed redirect target that is no upstream."""

CREDENTIAL_HEADERS = ("Authorization", "Cookie", "Proxy-Authorization")

log = logging.getLogger("mado_gateway.redirects")


class Follower:
    """Requests for one leg: leases sessions, follows redirects, refuses what it must, and
    records each redirect and refusal on ``leg``."""

    def __init__(
        self,
        *,
        pool: UpstreamPool,
        leases: contextlib.ExitStack,
        config: Config,
        upstream: Upstream,
        leg: Leg,
    ) -> None:
        self._pool = pool
        self._leases = leases
        self._config = config
        self._upstream = upstream
        self._leg = leg
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._own_origins = upstream.origins

    async def get(self, url: str, headers: CIMultiDict[str]) -> aiohttp.ClientResponse:
        """GET ``url`` and follow redirects; the returned answer is not a followed redirect.

        Raises :class:`RedirectNotFollowed`, :class:`AddressRefused`, or the aiohttp error of
        the first URL's connection (the caller classifies it and may fail over).
        """
        return await self.send("GET", url, headers)

    async def send(
        self, method: str, url: str, headers: CIMultiDict[str], body: bytes | None = None
    ) -> aiohttp.ClientResponse:
        """:meth:`get` for any method: ``body`` goes with every request that keeps the
        method (307, 308); a redirect that turns the request into a GET sends none."""
        policy = self._upstream.redirects
        current_upstream = self._upstream
        current = url
        original = method
        hops = 0
        visited = {url.partition("#")[0]}
        registered: dict[str, str] | None = None
        via: int | None = None
        while True:
            data = body if method == original else None
            answer = await self._request(
                current_upstream, method, current, headers, via, body=data
            )
            if answer.status not in FOLLOWED_STATUSES:
                return answer
            location = answer.headers.get("Location")
            status = via = answer.status
            answer.close()  # never read a redirect's body
            if registered is None:
                registered = registered_origins(self._config)
            try:
                step = decide_redirect(
                    current_url=current,
                    current_upstream=current_upstream.name,
                    status=status,
                    location=location,
                    method=method,
                    hops=hops,
                    visited=frozenset(visited),
                    policy=policy,
                    registered=registered,
                )
            except UrlRefused as refusal:
                raise self._refuse(status, refusal.rule, refusal.target, refusal.detail) from None
            hops += 1
            visited.add(step.url)
            self._leg.hops.append(Hop(status=status, target=step.url))
            if step.drop_credentials:
                headers = CIMultiDict(
                    (k, v) for k, v in headers.items() if k.title() not in CREDENTIAL_HEADERS
                )
            current_upstream = self._target_upstream(step.upstream, step.origin)
            current, method = step.url, step.method
            self._leg.url = current

    async def _request(
        self,
        upstream: Upstream,
        method: str,
        url: str,
        headers: CIMultiDict[str],
        via: int | None,
        *,
        body: bytes | None = None,
    ) -> aiohttp.ClientResponse:
        """One request; ``via`` is the redirect status that led here (None: the first URL)."""
        try:
            check_literal(vet_url(url, allow_http=True), upstream.address_policy)
        except UrlRefused as refusal:  # only a first URL can fail here (redirects are vetted)
            raise self._address_refused(upstream, url, str(refusal.rule)) from None
        except AddressBlocked as blocked:
            raise self._blocked(upstream, url, blocked, via) from None
        session = self._session(upstream)
        # encoded=True: yarl would otherwise re-quote the path and query (%2F -> /, %41 -> A,
        # %3d -> %3D) and resolve dot segments; the URL is sent exactly as vetted above.
        target = URL(url, encoded=True)
        credential = self._upstream.auth
        if credential is not None and origin_of(url) in self._own_origins:
            headers = headers.copy()
            headers["Authorization"] = credential.authorization()
        else:
            credential = None
        try:
            answer = await session.request(
                method, target, headers=headers, data=body, allow_redirects=False
            )
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, AddressBlocked):
                raise self._blocked(upstream, url, exc.os_error, via) from None
            raise
        if credential is not None and answer.status in {401, 407}:
            log.error(
                "upstream refused the configured credential: check its auth section",
                extra={
                    "upstream": self._upstream.name,
                    "upstream_status": answer.status,
                    "auth_type": str(credential.scheme),
                    "credential_from": credential.source,
                },
            )
        return answer

    def _session(self, upstream: Upstream) -> aiohttp.ClientSession:
        key = upstream.name if upstream.name != REDIRECT_UPSTREAM else repr(upstream.origins)
        session = self._sessions.get(key)
        if session is None:
            session = self._sessions[key] = self._leases.enter_context(self._pool.lease(upstream))
        return session

    def _target_upstream(self, name: str | None, origin: str) -> Upstream:
        if name is not None:
            if name == self._upstream.name:
                return self._upstream
            configured = self._config.upstreams.get(name)
            if configured is not None:
                return configured
        return Upstream(
            name=REDIRECT_UPSTREAM,
            protocol=Protocol.WADO_RS,
            base_urls=(origin + "/",),
            address_policy=self._config.address_policy,
        )

    def _blocked(
        self, upstream: Upstream, url: str, blocked: AddressBlocked, via: int | None
    ) -> Exception:
        address_class = str(blocked.address_class)
        if via is not None:
            detail = f"the redirect target is a {address_class} address"
            return self._refuse(via, Rule.ADDRESS, url, detail, address_class=address_class)
        return self._address_refused(upstream, url, address_class, address_class=address_class)

    def _address_refused(
        self, upstream: Upstream, url: str, why: str, *, address_class: str | None = None
    ) -> AddressRefused:
        detail = f"upstream {upstream.name}: address policy refused ({why})"
        self._leg.refusals.append(
            Refusal(
                kind=RefusalKind.ADDRESS, target=url, detail=detail, address_class=address_class
            )
        )
        return AddressRefused(upstream.name, why)

    def _refuse(
        self,
        status: int,
        rule: Rule,
        target: str,
        detail: str,
        *,
        address_class: str | None = None,
    ) -> RedirectNotFollowed:
        self._leg.hops.append(Hop(status=status, target=target, refused=rule))
        self._leg.refusals.append(
            Refusal(
                kind=RefusalKind.REDIRECT,
                target=target,
                detail=f"upstream {self._upstream.name}: {rule}: {detail}",
                address_class=address_class,
            )
        )
        return RedirectNotFollowed(self._upstream.name, status, rule)
