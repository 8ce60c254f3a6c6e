"""Liveness and readiness.

``/livez`` answers 200 while the event loop runs. ``/readyz`` answers 200 when a registry is
loaded and every readiness check registered by other parts (the audit journal, for one)
passes, and 503 problem+json naming the failing check otherwise.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from aiohttp import web

from gateway.keys import HOLDER, READINESS

__all__ = ["ReadinessCheck", "livez", "readyz"]

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
