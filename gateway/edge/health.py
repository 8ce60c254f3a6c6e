"""Liveness and readiness.

``/livez`` answers 200 while the event loop runs: a process that does not answer it is to
be restarted. ``/readyz`` answers 200 when a registry is loaded and every readiness check
registered by other parts passes — the audit journal can be written, the process is not
draining (from SIGTERM on) — and 503 problem+json naming the failing checks otherwise: a load
balancer sends it no new request, nothing needs restarting. Both are on the public port (for
probes and load balancers) and on the admin listener.

``/metrics`` is not on the public port: :func:`metrics_elsewhere` answers there with a 404
problem naming the admin listener, so a scraper left pointing at the old place is told why.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from gateway.keys import HOLDER, READINESS

__all__ = ["ReadinessCheck", "livez", "metrics_elsewhere", "readyz"]

ReadinessCheck = Callable[[], str | None]
"""Returns None when ready, or a short reason when not."""


async def livez(request: web.Request) -> web.Response:
    return web.json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    holder = request.app[HOLDER]
    failing = [reason for check in request.app[READINESS] if (reason := check()) is not None]
    if failing:
        body = {
            "type": "urn:mado-gateway:problem:not-ready",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "; ".join(failing),
        }
        return web.Response(
            status=503, body=orjson.dumps(body), content_type="application/problem+json"
        )
    return web.json_response({"status": "ready", "registry_generation": holder.generation})


async def metrics_elsewhere(request: web.Request) -> web.Response:
    """``/metrics`` on the public port: 404, the metrics are on the admin listener."""
    body = {
        "type": "urn:mado-gateway:problem:not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "metrics are served on the admin listener (server.admin), not on this port",
    }
    return web.Response(
        status=404, body=orjson.dumps(body), content_type="application/problem+json"
    )
