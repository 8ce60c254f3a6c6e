"""What one upstream answered for its share of a SOAP retrieve: the seam between the parts
that fetch (the SOAP client, the WADO-RS / RAD-160 bridge) and the part that answers (the
MTOM writer), design.md §4 "re-frame only when bridging".

An inbound RAD-69 / RAD-75 is split into groups, one per upstream (a community's responding
gateway, a repository). Each group's fetcher produces one :class:`GroupAnswer`: the documents
it returned (:class:`~gateway.protocols.xca.model.DocumentResponse`, with ``content_id`` as
*its* parts name them), the errors it reports, and its parts as an ordered stream. The
writer consolidates the groups' documents and errors into one envelope, sends it, then drains
each group's :attr:`GroupAnswer.parts` in turn, renaming the content ids.

Contract of :attr:`GroupAnswer.parts`: an async iterator of :class:`Part`; each part's
``chunks`` must be consumed (or :meth:`Part.skip` awaited) before the next part is asked
for — a live SOAP answer is one socket read in order. A part whose ``content_id`` no document
references may be skipped. When the stream ends before every referenced part has come, or a
part's chunks end in an error, the writer aborts the client connection (the envelope already
promised the documents: digest §6.2). :meth:`GroupAnswer.close` releases what the group
holds (a connection, spool files); it is always awaited, also after a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from gateway.protocols.xca.model import DocumentResponse, RegistryError

__all__ = ["GroupAnswer", "Part", "PartFailed", "no_parts"]


class PartFailed(Exception):
    """A part's bytes could not be delivered whole (upstream gone, stall, spool read error).
    ``reason`` is a bounded label (``truncated``, ``stalled``, ``unresolved``...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class Part:
    """One document's bytes, named by the content id its group's documents use."""

    content_id: str
    chunks: AsyncIterator[bytes]

    async def skip(self) -> None:
        """Consume the part without keeping it (an unreferenced part of a live answer)."""
        async for _ in self.chunks:
            pass


async def no_parts() -> AsyncIterator[Part]:
    """The part stream of a group that returned nothing."""
    return
    yield  # an async generator that yields nothing


async def _nothing() -> None:
    return None


@dataclass(slots=True, kw_only=True)
class GroupAnswer:
    """One upstream's (or one refusal's) contribution to the consolidated answer."""

    upstream: str | None  # the upstream's name; None for errors raised before any upstream
    documents: tuple[DocumentResponse, ...] = ()
    errors: tuple[RegistryError, ...] = ()
    parts: AsyncIterator[Part] = field(default_factory=no_parts)
    close: Callable[[], Awaitable[None]] = _nothing
