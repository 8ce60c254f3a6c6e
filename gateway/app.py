"""Wiring only: build the aiohttp application from settings and a registry holder.

Read this first to see what exists; read the modules it names to see what they do.
Request path: :mod:`gateway.edge.middleware`
→ :mod:`gateway.protocols.xcwado.handler` (RAD-160) or :mod:`gateway.protocols.xca.handler`
(RAD-69 / RAD-75 over SOAP)
→ :mod:`routing.registry` → :mod:`gateway.relay.forward`
→ sinks (:mod:`gateway.sinks.metrics`, audit).

The public application serves the protocols and ``/livez``, ``/readyz``; the admin listener
(:mod:`gateway.edge.admin`, built by :mod:`gateway.service.serve`) serves ``/metrics`` and
the admin views. How a process is started, drained and reloaded: :mod:`gateway.service`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.audit.events import AuditSecurityEvents
from gateway.audit.messages import AlertKind
from gateway.audit.service import AuditService
from gateway.consumer.endpoint import retrieve_manifest
from gateway.consumer.parsing import manifest_reader_context
from gateway.directory import Directory, DirectoryMetrics
from gateway.edge import health
from gateway.edge.cors import cors_on_prepare
from gateway.edge.drain import Drain
from gateway.edge.hardening import hardening_middleware, parser_limits
from gateway.edge.middleware import exchange_middleware, request_id_on_prepare
from gateway.edge.reload import LiveSettings, RegistryHolder
from gateway.edge.routes import (
    ADMIN_ROUTE,
    MANIFEST_PATH,
    MANIFEST_ROUTE,
    RETRIEVE_ROUTE,
    VIEWER_HEADERS,
    Route,
    RoutePolicy,
    RouteTable,
)
from gateway.edge.upstreams import UpstreamOutcomes
from gateway.exchange import ExchangeSink, LegSink
from gateway.keys import (
    DIRECTORY,
    DRAIN,
    HOLDER,
    LEG_SINKS,
    LIVE,
    MANIFEST_CACHE,
    METRICS,
    OUTCOMES,
    POOL,
    READINESS,
    SECURITY,
    SETTINGS,
    SINKS,
    SPOOL,
)
from gateway.manifestcache import CacheEvent, ManifestCache
from gateway.protocols.xca import handler as xca
from gateway.protocols.xca.faults import soap_error
from gateway.protocols.xca.spool import Spool
from gateway.protocols.xcwado import handler as xcwado
from gateway.protocols.xcwado.answer_headers import hide_source_on_prepare
from gateway.relay.upstream import UpstreamPool
from gateway.service.version import commit
from gateway.settings import ServerSettings
from gateway.sinks.metrics import Metrics
from gateway.sinks.security import CountedSecurityEvents, SecurityEvents
from routing.registry import Registry

__all__ = ["create_app"]

log = logging.getLogger("mado_gateway")


def create_app(
    settings: ServerSettings,
    holder: RegistryHolder,
    *,
    metrics_registry: CollectorRegistry | None = None,
    extra_sinks: Sequence[ExchangeSink] = (),
    security_events: SecurityEvents | None = None,
    audit: AuditService | None = None,
    worker: int = 0,
) -> web.Application:
    """The gateway application.

    ``security_events`` receives security alerts (default: a log line each). ``audit``,
    when given, is started before the first request and stopped after the last: it receives
    every exchange, every security event and every rejected reload, and its journal is a
    readiness check. ``worker`` numbers this process among the workers (its upstream table).
    Reloads (SIGHUP) and the drain (SIGTERM) are driven by :mod:`gateway.service.serve`
    through ``app[HOLDER]``, ``app[LIVE]`` and ``app[DRAIN]``.
    """
    if audit is not None and security_events is None:
        security_events = AuditSecurityEvents(audit)
    metrics = Metrics(
        metrics_registry or CollectorRegistry(), version=__version__, commit=commit()
    )
    security = CountedSecurityEvents(metrics.security_events, security_events)
    routes = route_table(settings, metrics)
    live = LiveSettings(settings)
    drain = Drain()
    outcomes = UpstreamOutcomes(holder.registry, worker=worker)
    app = web.Application(
        middlewares=[
            exchange_middleware(routes),
            hardening_middleware(live, metrics, routes),
        ],
        handler_args=parser_limits(settings.limits),
    )
    app.on_response_prepare.append(cors_on_prepare(lambda: live.current.cors))
    app.on_response_prepare.append(hide_source_on_prepare)
    app.on_response_prepare.append(request_id_on_prepare)
    pool = UpstreamPool(read_bufsize=settings.read_buffer_bytes)
    pool.retain(holder.registry.config.upstreams.values())  # builds the TLS contexts now

    def reloaded(ok: bool, registry: Registry) -> None:
        metrics.reloads.labels("success" if ok else "failure").inc()
        metrics.reload_ok.set(1 if ok else 0)
        if ok:
            metrics.known_upstreams(registry.config.upstreams)
            pool.retain(registry.config.upstreams.values())
            outcomes.configured(registry)

    holder.subscribe(reloaded)
    if audit is not None:
        holder.subscribe(_alert_rejected_reloads(audit, holder))
    metrics.known_upstreams(holder.registry.config.upstreams)

    app[SETTINGS] = settings
    app[LIVE] = live
    app[DRAIN] = drain
    app[OUTCOMES] = outcomes
    app[HOLDER] = holder
    app[METRICS] = metrics
    app[POOL] = pool
    app[DIRECTORY] = Directory(pool=pool, metrics=DirectoryMetrics(metrics.registry))
    sinks: list[ExchangeSink] = [metrics, outcomes, *extra_sinks]
    app[SINKS] = [*sinks, audit] if audit is not None else sinks
    leg_sinks: list[LegSink] = [audit] if audit is not None else []
    app[LEG_SINKS] = leg_sinks
    app[READINESS] = [drain.ready, *([audit.ready] if audit is not None else [])]
    app[SECURITY] = security

    def cache_event(event: CacheEvent) -> None:
        metrics.manifest_cache.labels(event.value).inc()

    app[MANIFEST_CACHE] = ManifestCache(settings.manifest_cache, on_event=cache_event)

    routes.install(app)
    app.cleanup_ctx.append(manifest_reader_context)
    app.cleanup_ctx.append(spool_context)

    if audit is not None:
        app.cleanup_ctx.append(_audit_lifecycle(audit))  # first: Application Start precedes all
    app.cleanup_ctx.append(_upstream_pool)
    return app


def route_table(settings: ServerSettings, metrics: Metrics) -> RouteTable:
    """Every route of the gateway: path → handler and the policy it runs under."""
    return RouteTable(
        [
            Route(
                path=settings.base_path, below=True, handler=xcwado.retrieve, policy=RETRIEVE_ROUTE
            ),
            Route(path=MANIFEST_PATH, handler=retrieve_manifest, policy=MANIFEST_ROUTE),
            Route(path=settings.xca.path, handler=xca.retrieve, policy=xca_route(settings)),
            Route(path="/livez", handler=health.livez, policy=ADMIN_ROUTE),
            Route(path="/readyz", handler=health.readyz, policy=ADMIN_ROUTE),
            Route(path="/metrics", handler=health.metrics_elsewhere, policy=ADMIN_ROUTE),
        ]
    )


def xca_route(settings: ServerSettings) -> RoutePolicy:
    """The XCA-I SOAP endpoint: POST only, a body of one envelope and its MTOM framing,
    limited like a retrieve, answers streamed, every error a SOAP Fault (or a Failure)."""
    return RoutePolicy(
        name="xca",
        methods=("POST",),
        request_headers=(*VIEWER_HEADERS, "Content-Type", "SOAPAction"),
        takes_body=True,
        limited=True,
        chunked_answer=True,
        max_body_bytes=xca.body_limit(settings.xca),
        errors=soap_error,
    )


async def spool_context(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: the XCA-I spool of this process (``server.xca.spool``), made at start
    — a directory that cannot be written stops the start — after clearing what dead
    processes left in it. Its files are discarded with their requests."""
    config = app[SETTINGS].xca.spool
    spool = Spool(
        config.path, max_bytes=config.max_bytes, max_request_bytes=config.max_request_bytes
    )
    removed = spool.clear_stale()
    if removed:
        log.info("stale spool files removed", extra={"files": removed})
    app[SPOOL] = spool
    yield


def _audit_lifecycle(
    audit: AuditService,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await audit.start()
        yield
        await audit.stop()

    return lifecycle


def _alert_rejected_reloads(
    audit: AuditService, holder: RegistryHolder
) -> Callable[[bool, Registry], None]:
    def alert(ok: bool, registry: Registry) -> None:
        if not ok:
            target = Path(holder.path).resolve().as_uri() if holder.path else "configuration"
            audit.security_alert(
                AlertKind.CONFIG_REJECTED, target, "configuration reload rejected as invalid"
            )

    return alert


async def _upstream_pool(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[DIRECTORY].close()
    await app[POOL].close()
