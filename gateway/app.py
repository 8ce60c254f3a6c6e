"""Wiring only: build the aiohttp application from settings and a registry holder.

Read this first to see what exists; read the modules it names to see what they do.
Request path: :mod:`gateway.middleware` → :mod:`gateway.xcwado` → :mod:`routing.registry`
→ :mod:`gateway.forward` → sinks (:mod:`gateway.metrics`, audit).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from gateway import __version__, health, xcwado
from gateway.exchange import ExchangeSink
from gateway.keys import HOLDER, METRICS, POOL, READINESS, SETTINGS, SINKS
from gateway.metrics import Metrics
from gateway.middleware import exchange_middleware
from gateway.reload import RegistryHolder
from gateway.settings import ServerSettings
from gateway.upstream import UpstreamPool
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
) -> web.Application:
    """The gateway application. ``handle_signals`` installs the SIGHUP reload handler."""
    app = web.Application(middlewares=[exchange_middleware], handler_args={"max_field_size": 16384})
    metrics = Metrics(metrics_registry or CollectorRegistry(), version=__version__)
    pool = UpstreamPool(read_bufsize=settings.read_buffer_bytes)

    def reloaded(ok: bool, registry: Registry) -> None:
        metrics.reloads.labels("success" if ok else "failure").inc()
        metrics.reload_ok.set(1 if ok else 0)
        if ok:
            metrics.known_upstreams(registry.config.upstreams)
            pool.retain(registry.config.upstreams.values())

    holder.subscribe(reloaded)
    metrics.known_upstreams(holder.registry.config.upstreams)

    app[SETTINGS] = settings
    app[HOLDER] = holder
    app[METRICS] = metrics
    app[POOL] = pool
    app[SINKS] = [metrics, *extra_sinks]
    app[READINESS] = []

    health.add_routes(app)
    app.router.add_get("/metrics", make_aiohttp_handler(metrics.registry))
    xcwado.add_routes(app, settings.base_path)

    app.cleanup_ctx.append(_upstream_pool)
    if handle_signals:
        app.cleanup_ctx.append(_sighup_reload)
    return app


async def _upstream_pool(app: web.Application) -> AsyncIterator[None]:
    yield
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
