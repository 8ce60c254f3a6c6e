"""The directory's answers in memory: bounded, each kept for a time, and told when one leaves.

:class:`Answers` is a ``cachetools.TTLCache`` that calls ``on_leave`` with every value that
leaves it, whether it expired, was pushed out by a newer one (least recently used first) or
was replaced: the resolver retires the connection pool of an upstream no answer names any
more, so the pool stays bounded as directory entries come and go. Not thread-safe: it lives on
the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from cachetools import TTLCache

__all__ = ["Answers", "Cached"]

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Cached(Generic[V]):
    """A value and when (timer seconds) it was fetched, for the entry-age metric."""

    value: V
    fetched_at: float


class Answers(TTLCache[K, Cached[V]]):
    """At most ``maxsize`` answers, each kept ``ttl`` seconds from when it was stored."""

    def __init__(
        self,
        maxsize: int,
        ttl: float,
        *,
        timer: Callable[[], float],
        on_leave: Callable[[V], None],
    ) -> None:
        super().__init__(maxsize, ttl, timer=timer)
        self._on_leave = on_leave

    def fresh(self, key: K) -> Cached[V] | None:
        """The answer for ``key`` if it has not expired (expired ones leave first)."""
        self.expire()
        return self.get(key)

    def store(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key`` from now on."""
        old = self.pop(key, None)
        if old is not None:
            self._on_leave(old.value)
        self[key] = Cached(value, self.timer())

    def drop_all(self) -> None:
        """Let every answer leave (a new directory configuration)."""
        while self:
            self.popitem()

    def popitem(self) -> tuple[K, Cached[V]]:
        key, cached = super().popitem()
        self._on_leave(cached.value)
        return key, cached

    def expire(self, time: float | None = None) -> list[tuple[K, Cached[V]]]:
        expired = list(super().expire(time))
        for _, cached in expired:
            self._on_leave(cached.value)
        return expired
