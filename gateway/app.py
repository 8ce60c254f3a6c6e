"""Wiring only: build the aiohttp application from settings and a registry holder.

Read this first to see what exists; read the modules it names to see what they do.
Request path: :mod:`gateway.edge.middleware`
→ :mod:`gateway.protocols.xcwado.handler` (RAD-160) or :mod:`gateway.protocols.xca.handler`
(RAD-69 / RAD-75 over SOAP)
→ :mod:`routing.registry` → :mod:`gateway.relay.forward`
→ sinks (:mod:`gateway.sinks.metrics`, audit).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway import __version__
from gateway.audit.events import AuditSecurityEvents
from gateway.audit.messages import AlertKind
from gateway.audit.service import AuditService
from gateway.consumer.endpoint import retrieve_manifest
from gateway.consumer.parsing import manifest_reader_context
from gateway.directory import Directory, DirectoryMetrics
from gateway.edge import health
from gateway.edge.cors import cors_on_prepare
from gateway.edge.hardening import hardening_middleware, parser_limits
from gateway.edge.middleware import exchange_middleware, request_id_on_prepare
from gateway.edge.reload import RegistryHolder
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
from gateway.exchange import ExchangeSink, LegSink
from gateway.keys import (
    DIRECTORY,
    HOLDER,
    LEG_SINKS,
    MANIFEST_CACHE,
    METRICS,
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
    handle_signals: bool = False,
    security_events: SecurityEvents | None = None,
    audit: AuditService | None = None,
) -> web.Application:
    """The gateway application.

    ``handle_signals`` installs the SIGHUP reload handler; ``security_events`` receives
    security alerts (default: a log line each). ``audit``, when given, is started before the
    first request and stopped after the last: it receives every exchange, every security
    event and every rejected reload, and its journal is a readiness check.
    """
    if audit is not None and security_events is None:
        security_events = AuditSecurityEvents(audit)
    metrics = Metrics(metrics_registry or CollectorRegistry(), version=__version__)
    security = CountedSecurityEvents(metrics.security_events, security_events)
    routes = route_table(settings, metrics)
    app = web.Application(
        middlewares=[
            exchange_middleware(routes),
            hardening_middleware(settings, metrics, routes),
        ],
        handler_args=parser_limits(settings.limits),
    )
    app.on_response_prepare.append(cors_on_prepare(settings.cors))
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

    holder.subscribe(reloaded)
    if audit is not None:
        holder.subscribe(_alert_rejected_reloads(audit, holder))
    metrics.known_upstreams(holder.registry.config.upstreams)

    app[SETTINGS] = settings
    app[HOLDER] = holder
    app[METRICS] = metrics
    app[POOL] = pool
    app[DIRECTORY] = Directory(pool=pool, metrics=DirectoryMetrics(metrics.registry))
    app[SINKS] = [metrics, *extra_sinks, *([audit] if audit is not None else [])]
    leg_sinks: list[LegSink] = [audit] if audit is not None else []
    app[LEG_SINKS] = leg_sinks
    app[READINESS] = [audit.ready] if audit is not None else []
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
    if handle_signals:
        app.cleanup_ctx.append(_sighup_reload)
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
            Route(
                path="/metrics",
                handler=make_aiohttp_handler(metrics.registry),
                policy=ADMIN_ROUTE,
            ),
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


async def _sighup_reload(app: web.Application) -> AsyncIterator[None]:
    loop = asyncio.get_running_loop()
    holder = app[HOLDER]

    def on_sighup() -> None:
        log.info("SIGHUP received: reloading configuration", extra={"path": str(holder.path)})
        holder.reload()

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    yield
    loop.remove_signal_handler(signal.SIGHUP)
