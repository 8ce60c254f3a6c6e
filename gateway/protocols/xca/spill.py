"""A live group answer copied to the spool in the background (digest §6.4 item 1: "while one
upstream's part is being streamed, the others' bytes spill to disk (bounded) so that their
idle timeouts do not fire").

:func:`spill` starts one task that drains the live answer's parts as fast as the upstream
sends them, each part into its own spool file of the request's budget, and returns a
:class:`~gateway.protocols.xca.results.GroupAnswer` with the same documents and errors whose
parts are served from those files, in the same order, each once its file is complete (a
part is not handed out while it is still being written). A file is discarded as soon as it
has been read, so the budget is given back part by part.

Failures keep their place in the order: the part being spooled when the spool ran out
(:class:`~gateway.protocols.xca.spool.SpoolFull`) raises ``PartFailed("spool-full")`` when it
is read, one the upstream cut raises its ``PartFailed`` reason, and an end of the stream the
live answer refused (``unresolved``, ``truncated``) is raised by the parts iterator after the
last good part. The envelope was already sent when a part is read, so the writer then aborts
the client connection (digest §6.2). After a failure nothing more is drained: the upstream
is released at once.

:attr:`GroupAnswer.close` cancels the task, closes the live answer (its connection) and
discards every file still held; it is idempotent. The task closes the live answer itself as
soon as it has drained it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.protocols.xca.answerstream import spooled_part
from gateway.protocols.xca.results import GroupAnswer, Part, PartFailed
from gateway.protocols.xca.spool import SpoolBudget, SpoolFile, SpoolFull

__all__ = ["spill"]

log = logging.getLogger("mado_gateway.xca")


def spill(answer: GroupAnswer, budget: SpoolBudget) -> GroupAnswer:
    """``answer`` with its live parts copied to the spool in the background, so that its
    upstream keeps sending while another group's parts go to the client first.

    Must be called in a running event loop. See the module docstring.
    """
    spilled = _Spilled(answer, budget)
    return GroupAnswer(
        upstream=answer.upstream,
        documents=answer.documents,
        errors=answer.errors,
        parts=spilled.parts(),
        close=spilled.close,
    )


@dataclass(slots=True)
class _Entry:
    """One part of the live answer: complete (``spooled`` finished), failed, or being written."""

    content_id: str
    spooled: SpoolFile | None = None
    complete: bool = False
    failure: str | None = None

    @property
    def settled(self) -> bool:
        return self.complete or self.failure is not None


class _Spilled:
    def __init__(self, source: GroupAnswer, budget: SpoolBudget) -> None:
        self._source = source
        self._budget = budget
        self._entries: list[_Entry] = []
        self._end_failure: str | None = None
        self._drained = False
        self._changed = asyncio.Event()
        self._closed = False
        self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            async for part in self._source.parts:
                entry = _Entry(part.content_id)
                self._entries.append(entry)
                self._changed.set()
                entry.failure = await self._copy(part, entry)
                entry.complete = entry.failure is None
                self._changed.set()
                if entry.failure is not None:
                    break  # nothing after this part can reach the client
        except PartFailed as failed:
            self._end_failure = failed.reason
        except Exception:  # a bug must not leave the reader waiting forever
            log.exception("spilling a group's answer failed")
            self._end_failure = "spool-error"
        finally:
            for entry in self._entries:
                if not entry.settled:
                    entry.failure = "spool-error"
            self._drained = True
            self._changed.set()
        await self._source.close()

    async def _copy(self, part: Part, entry: _Entry) -> str | None:
        """Copy one part to a new file; the failure's reason, or None."""
        try:
            spooled = entry.spooled = self._budget.file()
            async for chunk in part.chunks:
                spooled.write(chunk)
            spooled.finish()
        except SpoolFull:
            return "spool-full"
        except PartFailed as failed:
            return failed.reason
        except (OSError, ValueError):
            return "spool-error"
        return None

    async def _settled(self, index: int) -> _Entry | None:
        """Entry ``index`` once complete or failed; None when the drain ended before it."""
        while True:
            if index < len(self._entries) and self._entries[index].settled:
                return self._entries[index]
            if self._drained:
                return self._entries[index] if index < len(self._entries) else None
            # Single consumer, one loop: nothing can set the event between clear and wait.
            self._changed.clear()
            await self._changed.wait()

    async def parts(self) -> AsyncIterator[Part]:
        index = 0
        while (entry := await self._settled(index)) is not None:
            index += 1
            yield Part(content_id=entry.content_id, chunks=self._chunks(entry))
        if self._end_failure is not None:
            raise PartFailed(self._end_failure)

    async def _chunks(self, entry: _Entry) -> AsyncIterator[bytes]:
        if entry.failure is not None or entry.spooled is None:
            raise PartFailed(entry.failure or "spool-error")
        async for block in spooled_part(entry.spooled):
            yield block

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # our caller is being cancelled, not only the task
        finally:
            for entry in self._entries:
                if entry.spooled is not None:
                    entry.spooled.discard()
            await self._source.close()
