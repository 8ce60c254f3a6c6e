"""What every fetcher of one inbound request is handed: one :class:`Fetching`.

A request's groups are fetched by :func:`.client.call` (RAD-75 / RAD-69 over SOAP) and
:func:`.bridge.fetch` (WADO-RS / RAD-160, one GET per document), and a RAD-160 that reaches
an XCA-I community by :func:`.fromweb.send`; each gives a :class:`.results.GroupAnswer`.
What they share — per request, never per group — travels in one value, so a fetcher's
signature says only what differs: the group.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.exchange import Exchange
from gateway.protocols.xca.spool import SpoolBudget
from gateway.relay.handover import Relay
from gateway.settings import XcaSettings
from routing.ids import HomeCommunityId

__all__ = ["Fetching"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetching:
    """The inbound request (its headers, for what is forwarded), the
    :class:`~gateway.relay.handover.Relay` (pool, registry, telemetry: nothing below a handler
    reads the application), the exchange the legs are recorded on, the XCA-I settings, the
    request's spool budget and the transfer syntaxes asked for, in preference order."""

    request: web.Request
    relay: Relay
    exchange: Exchange
    settings: XcaSettings
    budget: SpoolBudget
    transfer_syntaxes: tuple[str, ...]

    @property
    def own(self) -> HomeCommunityId:
        """This gateway's community: where its errors are located, what a RAD-69 it sends
        names as HomeCommunityId."""
        return self.relay.registry.identity.home_community_id
