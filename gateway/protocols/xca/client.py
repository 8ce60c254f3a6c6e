"""The SOAP side of a group: one RAD-75 or RAD-69 to one upstream, its MTOM answer as a
:class:`~gateway.protocols.xca.results.GroupAnswer` (placeholder: being written)."""

from __future__ import annotations

from aiohttp import web

from gateway.exchange import Exchange
from gateway.protocols.xca.plan import Group
from gateway.protocols.xca.results import GroupAnswer
from gateway.protocols.xca.spool import SpoolBudget
from gateway.relay.handover import Relay
from gateway.settings import XcaSettings
from routing.ids import HomeCommunityId

__all__ = ["call", "spill"]


async def call(
    request: web.Request,
    relay: Relay,
    exchange: Exchange,
    group: Group,
    *,
    transfer_syntaxes: tuple[str, ...],
    settings: XcaSettings,
    budget: SpoolBudget,
    own: HomeCommunityId,
    responding: bool,
) -> GroupAnswer:
    """Send ``group``'s documents to its SOAP upstream and return its answer, parts live.

    Never raises for an upstream failure: an unreachable or unreadable upstream becomes one
    RegistryError per document (XDSUnavailableCommunity for RAD-75, XDSRepositoryError for
    RAD-69). ``responding``: this gateway answers RAD-75 (the RIG rules: HomeCommunityId =
    ``own`` on every DocumentResponse, every error relocated to ``own``).
    """
    raise NotImplementedError


def spill(answer: GroupAnswer, budget: SpoolBudget) -> GroupAnswer:
    """``answer`` with its live parts copied to the spool in the background, so that its
    upstream keeps sending while another group's parts go to the client first."""
    raise NotImplementedError
