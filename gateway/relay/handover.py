"""What a handler hands the relay: the only way application state reaches below the handler.

design.md §4: nothing below the handler reads application state. The edge
(:func:`gateway.edge.middleware.exchange_middleware`) builds one :class:`Relay` per request from
the application — the upstream pool, the registry current when the request began, the
telemetry that takes the relay's records to the sinks — and a handler passes it to
:func:`gateway.relay.forward.forward` or :func:`gateway.relay.forward.open_upstream` explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.exchange import Telemetry
from gateway.relay.upstream import UpstreamPool
from routing.registry import Registry

__all__ = ["RELAY", "Relay"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Relay:
    """The upstream pool, the registry the request is routed with, and where records go."""

    pool: UpstreamPool
    registry: Registry
    telemetry: Telemetry


RELAY = web.RequestKey("relay", Relay)
"""Set by the edge on every request; re-exported by :mod:`gateway.keys`."""
