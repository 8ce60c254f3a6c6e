"""Every key under which the application and requests keep state (design.md §9 rule 2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.directory import Directory
from gateway.edge.drain import Drain
from gateway.edge.reload import LiveSettings, RegistryHolder
from gateway.edge.upstreams import UpstreamOutcomes
from gateway.exchange import Exchange, ExchangeSink, LegSink
from gateway.manifestcache import ManifestCache
from gateway.protocols.xca.spool import Spool
from gateway.protocols.xcwado.border import Border
from gateway.relay.handover import RELAY
from gateway.relay.upstream import UpstreamPool
from gateway.settings import ServerSettings
from gateway.sinks.metrics import Metrics
from gateway.sinks.security import SecurityEvents

if TYPE_CHECKING:  # the reader module imports these keys
    from gateway.consumer.parsing import ManifestReader

__all__ = [
    "BORDER",
    "DIRECTORY",
    "DRAIN",
    "EXCHANGE",
    "HOLDER",
    "LEG_SINKS",
    "LIVE",
    "MANIFEST_CACHE",
    "MANIFEST_READER",
    "METRICS",
    "OUTCOMES",
    "POOL",
    "READINESS",
    "RELAY",
    "SECURITY",
    "SETTINGS",
    "SINKS",
    "SPOOL",
]

SETTINGS = web.AppKey("settings", ServerSettings)  # as started: the fields fixed until a restart
LIVE = web.AppKey("live_settings", LiveSettings)  # in force: .current, what SIGHUP may change
DRAIN = web.AppKey("drain", Drain)  # SIGTERM: readiness, requests in flight, their abort cause
OUTCOMES = web.AppKey("upstream_outcomes", UpstreamOutcomes)  # for /admin/upstreams
HOLDER = web.AppKey("registry_holder", RegistryHolder)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("upstream_pool", UpstreamPool)
DIRECTORY = web.AppKey("directory", Directory)  # asked for what the registry does not name
SINKS = web.AppKey("exchange_sinks", list[ExchangeSink])
LEG_SINKS = web.AppKey("leg_sinks", list[LegSink])  # told before a leg's first byte
SECURITY = web.AppKey("security_events", SecurityEvents)
SPOOL = web.AppKey("xca_spool", Spool)  # where XCA-I answers wait (gateway.app.spool_context)

EXCHANGE = web.RequestKey("exchange", Exchange)
BORDER = web.RequestKey("border", Border)  # set by a relay: what its upstream's URLs become
READINESS = web.AppKey("readiness_checks", list[Callable[[], str | None]])
MANIFEST_READER: web.AppKey[ManifestReader] = web.AppKey("manifest_reader")
MANIFEST_CACHE = web.AppKey("manifest_cache", ManifestCache)
