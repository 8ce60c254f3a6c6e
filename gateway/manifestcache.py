"""The instance lists of recently read MADO manifests: what a study- or series-level RAD-160
becomes when the study lies in a community (RAD-75) or a source (RAD-69) that speaks only
XCA-I.

A RAD-69/RAD-75 DocumentRequest names one instance (its SOP Instance UID as DocumentUniqueId)
and XCA-I has no query to list a study's instances (xcai-digest.md §7, §8.1), so a
study-level request can be bridged only when something else lists them: the manifest. Every
manifest ``POST /mado/retrieve`` reads is remembered here (:meth:`ManifestCache.remember`),
keyed by (homeCommunityId, Study Instance UID); the RAD-160 bridge asks for the instances of
one Retrieve Location UID, and of one series when the request is series-level
(:meth:`ManifestCache.instances`). Without an entry the bridge answers a documented problem
(never a silently partial study: xcai-digest.md §9 item 32).

Bounds (:class:`~gateway.settings.ManifestCacheSettings`): entries older than ``ttl_s`` are
gone; past ``max_studies`` studies or ``max_instances`` instances the least recently used
study leaves first; a study with more than ``max_instances`` instances is not kept at all.
What one instance costs is its SOP Instance UID (the series and location strings are shared
per series). Each worker process has its own cache: a manifest posted to one worker is not
known to its siblings.

Every lookup and every store is reported to ``on_event`` with a :class:`CacheEvent` (the
metric label; :mod:`gateway.sinks.metrics`). Single-threaded: used from the event loop only.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cachetools import TTLCache

from gateway.settings import ManifestCacheSettings
from mado.model import Manifest, Series
from routing.ids import HomeCommunityId, Oid

__all__ = [
    "CACHE_EVENTS",
    "CacheEvent",
    "ListedInstance",
    "ListedSeries",
    "ManifestCache",
]


class CacheEvent(enum.StrEnum):
    """What happened to one lookup or store (a bounded metric label)."""

    HIT = "hit"  # the study is held
    MISS = "miss"  # the study is not held (never stored, expired or evicted)
    STORED = "stored"  # a manifest's instance list was kept
    TOO_LARGE = "too-large"  # a manifest listed more instances than max_instances


CACHE_EVENTS = tuple(event.value for event in CacheEvent)


@dataclass(frozen=True, slots=True)
class ListedInstance:
    """One instance a manifest lists, with what a DocumentRequest needs besides the study."""

    series_uid: str
    sop_instance_uid: str
    retrieve_location_uid: str


@dataclass(frozen=True, slots=True)
class ListedSeries:
    """A series of a remembered manifest: its Retrieve Location UID (after the configured
    aliases) and its instances' SOP Instance UIDs. Series whose location is neither an OID
    nor an alias are not kept: no RAD-160 can name them."""

    series_uid: str
    retrieve_location_uid: str
    instances: tuple[str, ...]


_Key = tuple[str, str]  # (bare homeCommunityId, Study Instance UID)


def _size(entry: tuple[ListedSeries, ...]) -> int:
    return max(1, sum(len(series.instances) for series in entry))


class ManifestCache:
    """See the module docstring. ``timer`` is the clock of ``ttl_s`` (tests pass their own)."""

    def __init__(
        self,
        settings: ManifestCacheSettings,
        *,
        on_event: Callable[[CacheEvent], None] | None = None,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._entries: TTLCache[_Key, tuple[ListedSeries, ...]] | None = None
        if settings.max_studies > 0:
            self._entries = TTLCache(
                maxsize=settings.max_instances,
                ttl=settings.ttl_s,
                timer=timer,
                getsizeof=_size,
            )

    def __len__(self) -> int:
        """Studies held now (expired ones may still count until the next store or lookup)."""
        return 0 if self._entries is None else len(self._entries)

    def remember(
        self,
        home_community_id: str,
        manifest: Manifest,
        *,
        aliases: Mapping[str, Oid] | None = None,
    ) -> bool:
        """Keep ``manifest``'s instance list for the study in community ``home_community_id``
        (replacing an older one). ``aliases`` maps opaque location identifiers to Retrieve
        Location UIDs (``location_aliases``). Returns whether it was kept: not when the cache
        is off, and not when the manifest lists more than ``max_instances`` instances
        (:attr:`CacheEvent.TOO_LARGE`). Raises nothing the manifest's content could cause."""
        entries = self._entries
        if entries is None:
            return False
        listed = tuple(
            series
            for series in (_listed(s, aliases or {}) for s in manifest.series)
            if series is not None
        )
        key = _key(home_community_id, manifest.study.uid)
        entries.pop(key, None)
        if _size(listed) > self.settings.max_instances:
            self._event(CacheEvent.TOO_LARGE)
            return False
        entries[key] = listed  # evicts the least recently used studies past max_instances
        while len(entries) > self.settings.max_studies:
            entries.popitem()
        self._event(CacheEvent.STORED)
        return True

    def instances(
        self,
        home_community_id: str,
        study_uid: str,
        *,
        retrieve_location_uid: str,
        series_uid: str | None = None,
    ) -> tuple[ListedInstance, ...] | None:
        """The instances a remembered manifest lists for the study at that Retrieve Location
        UID (of that series when ``series_uid`` is given), in manifest order; ``()`` when the
        study is held but lists none there; None when the study is not held
        (:attr:`CacheEvent.MISS`; a held study is a :attr:`CacheEvent.HIT`)."""
        entry = None
        if self._entries is not None:
            entry = self._entries.get(_key(home_community_id, study_uid))
        if entry is None:
            self._event(CacheEvent.MISS)
            return None
        self._event(CacheEvent.HIT)
        location = Oid(retrieve_location_uid)
        return tuple(
            ListedInstance(series.series_uid, sop, series.retrieve_location_uid)
            for series in entry
            if series.retrieve_location_uid == location
            and (series_uid is None or series.series_uid == series_uid)
            for sop in series.instances
        )

    def _event(self, event: CacheEvent) -> None:
        if self._on_event is not None:
            self._on_event(event)


def _key(home_community_id: str, study_uid: str) -> _Key:
    return str(HomeCommunityId(home_community_id)), study_uid.strip()


def _listed(series: Series, aliases: Mapping[str, Oid]) -> ListedSeries | None:
    location = series.retrieve_location_uid
    if location is None and series.opaque_location is not None:
        location = aliases.get(series.opaque_location)
    if location is None:
        return None
    return ListedSeries(
        series_uid=str(series.uid),
        retrieve_location_uid=str(location),
        instances=tuple(str(instance.sop_instance_uid) for instance in series.instances),
    )
