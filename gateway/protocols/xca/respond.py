"""Answering one RAD-69 / RAD-75 request: plan, fetch every group, consolidate, write
(digest §2.9, §2.10, §6.4; items 8, 16-24, 37).

:func:`respond`, in order:

1. :func:`.plan.plan` splits the request into groups (one per upstream) and refusals;
2. inside one spool budget for the request, every group is fetched concurrently, at most
   ``xca.concurrency`` at a time: SOAP upstreams (``rad-75``, ``rad-69``) by
   :func:`.client.call`, whose answer arrives with its parts still on the wire; DICOMweb
   upstreams (``wado-rs``, ``xc-wado``) by :func:`.bridge.fetch`, spooled. A live SOAP
   answer that comes back while other groups are still being fetched is
   :func:`.client.spill`-ed at once, so its upstream keeps sending and no idle timeout
   fires; the live answer that completes the set (if any) is streamed straight through,
   first (digest §6.4 path 1);
3. :func:`.consolidate.consolidate` makes one response of them (status, errors relocated
   for a responding gateway, new Content-IDs) and the per-document outcomes, which go on
   the exchange for the audit trail;
4. :func:`.answer.send_answer` writes it.

Every group's answer is closed when the request ends, whatever ended it (its upstream
connection released, its spool files discarded); the spool budget is closed last. An
unexpected error in a group cancels the others and propagates (a Receiver Fault: nothing was
sent yet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiohttp import web

from gateway.exchange import Exchange, Leg
from gateway.protocols.xca import bridge, client
from gateway.protocols.xca.answer import Stream, send_answer
from gateway.protocols.xca.consolidate import consolidate
from gateway.protocols.xca.envelope import build_response, new_message_id
from gateway.protocols.xca.fetching import Fetching
from gateway.protocols.xca.model import Action, Addressing, RetrieveRequest
from gateway.protocols.xca.mtom import MtomWriter
from gateway.protocols.xca.plan import Carrier, Group, Role, plan
from gateway.protocols.xca.results import GroupAnswer
from gateway.protocols.xca.spool import Spool, SpoolBudget
from gateway.relay.handover import Relay
from gateway.settings import XcaSettings

__all__ = ["respond"]

log = logging.getLogger("mado_gateway.xca")

_LIVE = frozenset({Carrier.RAD_75, Carrier.RAD_69})  # answers that hold a connection open


async def respond(
    request: web.Request,
    relay: Relay,
    exchange: Exchange,
    addressing: Addressing,
    retrieve: RetrieveRequest,
    *,
    role: Role,
    settings: XcaSettings,
    spool: Spool,
) -> web.StreamResponse:
    """Answer ``retrieve`` (read from an envelope with ``addressing``) as ``role``; see the
    module docstring. Returns the streamed response."""
    registry = relay.registry
    own = registry.identity.home_community_id
    planned = plan(retrieve, registry, role)
    responding = role is Role.RESPONDING
    groups = planned.groups
    syntaxes = retrieve.transfer_syntaxes

    with spool.request() as budget:

        fetching = Fetching(
            request=request,
            relay=relay,
            exchange=exchange,
            settings=settings,
            budget=budget,
            transfer_syntaxes=syntaxes,
        )

        async def fetch(group: Group) -> GroupAnswer:
            if group.carrier in _LIVE:
                return await client.call(fetching, group, responding=responding)
            return await bridge.fetch(fetching, group)

        fetched: dict[int, GroupAnswer] = {}
        try:
            direct = await _fetch_all(groups, fetched, fetch, budget, settings.concurrency)
            order = sorted(range(len(groups)), key=lambda index: index != direct)
            pairs = [(groups[index], fetched[index]) for index in order]
            writer = MtomWriter()
            result = consolidate(
                retrieve,
                planned.refused,
                pairs,
                own=own,
                responding=responding,
                content_id=writer.new_content_id,
            )
            exchange.documents = list(result.outcomes)
            reply = Addressing(
                action=Action(addressing.action).response,
                message_id=new_message_id(),
                relates_to=addressing.message_id,
            )
            streams = [
                Stream(answer=answer, renames=names, leg=_leg_of(exchange, answer))
                for (_, answer), names in zip(pairs, result.renames, strict=True)
            ]
            return await send_answer(
                request,
                exchange,
                telemetry=relay.telemetry,
                writer=writer,
                envelope=build_response(reply, result.response),
                streams=streams,
                inline=result.inline,
            )
        finally:
            await _close_all(fetched.values())


async def _fetch_all(
    groups: Sequence[Group],
    fetched: dict[int, GroupAnswer],
    fetch: Callable[[Group], Awaitable[GroupAnswer]],
    budget: SpoolBudget,
    concurrency: int,
) -> int | None:
    """Fill ``fetched`` (group index → answer); the index of the live answer to stream
    straight through, or None. On an error, what was fetched is in ``fetched`` (the caller
    closes it) and the groups still running are cancelled."""
    limit = asyncio.Semaphore(max(1, concurrency))

    async def bounded(group: Group) -> GroupAnswer:
        async with limit:
            return await fetch(group)

    tasks = {asyncio.ensure_future(bounded(group)): index for index, group in enumerate(groups)}
    pending = set(tasks)
    direct: int | None = None
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            batch = sorted(tasks[task] for task in done)
            for task in done:
                fetched[tasks[task]] = task.result()
            live = [index for index in batch if groups[index].carrier in _LIVE]
            if live and not pending and direct is None:
                direct = live.pop(0)  # the set is complete: nothing to wait for, stream it
            for index in live:
                fetched[index] = client.spill(fetched[index], budget)
    except BaseException:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task, index in tasks.items():
            finished = task.done() and not task.cancelled() and task.exception() is None
            if index not in fetched and finished:
                fetched[index] = task.result()
        raise
    return direct


def _leg_of(exchange: Exchange, answer: GroupAnswer) -> Leg | None:
    """The leg that fetched ``answer`` (the latest to its upstream), if any was opened."""
    for leg in reversed(exchange.legs):
        if leg.upstream == answer.upstream:
            return leg
    return None


async def _close_all(answers: Iterable[GroupAnswer]) -> None:
    for answer in list(answers):
        try:
            await answer.close()
        except Exception:  # one group's failure to close must not keep the others open
            log.exception("closing an XCA-I group answer failed")
