"""The manifest instance-list cache (gateway.manifestcache): what it keeps, for how long, and
within which bounds; xcai-digest.md §9 item 32 (a study over XCA-I needs its instance list)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from gateway.manifestcache import CACHE_EVENTS, CacheEvent, ListedInstance, ManifestCache
from gateway.settings import ManifestCacheSettings
from gateway.sinks.metrics import MANIFEST_CACHE_EVENTS, Metrics
from mado.model import Instance, Manifest, Patient, Series, Study
from routing.ids import Oid, Uid

HCID = "1.3.6.1.4.1.21367.13.70.3"
LOC_A, LOC_B = "1.3.6.1.4.1.21367.13.70.3.200", "1.3.6.1.4.1.21367.13.70.3.300"
CT = Uid("1.2.840.10008.5.1.4.1.1.2")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def series(
    uid: str, count: int, *, location: str | None = LOC_A, opaque: str | None = None
) -> Series:
    return Series(
        uid=Uid(uid),
        retrieve_location_uid=None if location is None else Oid(location),
        opaque_location=opaque,
        instances=tuple(
            Instance(sop_class_uid=CT, sop_instance_uid=Uid(f"{uid}.{n}"))
            for n in range(1, count + 1)
        ),
    )


def manifest(study: str, *members: Series) -> Manifest:
    return Manifest(patient=Patient(), study=Study(uid=Uid(study)), series=members)


def cache(
    max_studies: int = 10, max_instances: int = 1000, ttl_s: float = 60.0
) -> tuple[ManifestCache, list[CacheEvent], Clock]:
    events: list[CacheEvent] = []
    clock = Clock()
    held = ManifestCache(
        ManifestCacheSettings(max_studies=max_studies, max_instances=max_instances, ttl_s=ttl_s),
        on_event=events.append,
        timer=clock,
    )
    return held, events, clock


def uids(found: tuple[ListedInstance, ...] | None) -> list[str] | None:
    return None if found is None else [i.sop_instance_uid for i in found]


@pytest.mark.xcai(32)
def test_a_remembered_study_lists_its_instances_at_a_location_and_in_a_series() -> None:
    held, events, _ = cache()
    doc = manifest(
        "1.2.3", series("1.2.3.1", 2), series("1.2.3.2", 1), series("1.2.3.3", 1, location=LOC_B)
    )
    assert held.remember(f"urn:oid:{HCID}", doc)
    study = held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_A)
    assert study == (
        ListedInstance("1.2.3.1", "1.2.3.1.1", LOC_A),
        ListedInstance("1.2.3.1", "1.2.3.1.2", LOC_A),
        ListedInstance("1.2.3.2", "1.2.3.2.1", LOC_A),
    )
    assert uids(
        held.instances(HCID, "1.2.3", retrieve_location_uid=f"urn:oid:{LOC_A}", series_uid="1.2.3.2")
    ) == ["1.2.3.2.1"]
    assert uids(held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_B)) == ["1.2.3.3.1"]
    # held, but nothing there: an empty list, not a miss
    assert held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_B, series_uid="1.2.3.1") == ()
    assert events == [CacheEvent.STORED, *[CacheEvent.HIT] * 4]


@pytest.mark.xcai(32)
def test_another_community_or_study_is_a_miss() -> None:
    held, events, _ = cache()
    held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 1)))
    assert held.instances("1.2.9", "1.2.3", retrieve_location_uid=LOC_A) is None
    assert held.instances(HCID, "1.2.4", retrieve_location_uid=LOC_A) is None
    assert events[1:] == [CacheEvent.MISS, CacheEvent.MISS]


def test_opaque_locations_are_kept_through_the_aliases_only() -> None:
    held, _, _ = cache()
    doc = manifest(
        "1.2.3",
        series("1.2.3.1", 1, location=None, opaque="ACME"),
        series("1.2.3.2", 1, location=None, opaque="OTHER"),
    )
    held.remember(HCID, doc, aliases={"ACME": Oid(LOC_B)})
    assert uids(held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_B)) == ["1.2.3.1.1"]


def test_a_newer_manifest_replaces_the_older() -> None:
    held, _, _ = cache()
    held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 3)))
    held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 1)))
    assert uids(held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_A)) == ["1.2.3.1.1"]
    assert len(held) == 1


def test_a_study_leaves_after_its_ttl() -> None:
    held, events, clock = cache(ttl_s=30.0)
    held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 1)))
    clock.now = 29.0
    assert held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_A) is not None
    clock.now = 31.0
    assert held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_A) is None
    assert events[-1] is CacheEvent.MISS


def test_past_max_studies_the_least_recently_used_leaves() -> None:
    held, _, _ = cache(max_studies=2)
    for study in ("1.2.1", "1.2.2"):
        held.remember(HCID, manifest(study, series(f"{study}.1", 1)))
    held.instances(HCID, "1.2.1", retrieve_location_uid=LOC_A)  # 1.2.1 is used again
    held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 1)))
    assert len(held) == 2
    assert held.instances(HCID, "1.2.2", retrieve_location_uid=LOC_A) is None
    assert held.instances(HCID, "1.2.1", retrieve_location_uid=LOC_A) is not None


def test_past_max_instances_studies_leave_and_a_too_large_one_is_not_kept() -> None:
    held, events, _ = cache(max_instances=10)
    held.remember(HCID, manifest("1.2.1", series("1.2.1.1", 6)))
    held.remember(HCID, manifest("1.2.2", series("1.2.2.1", 6)))  # 12 > 10: 1.2.1 leaves
    assert held.instances(HCID, "1.2.1", retrieve_location_uid=LOC_A) is None
    assert len(held) == 1
    assert not held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 11)))
    assert CacheEvent.TOO_LARGE in events
    assert held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_A) is None


def test_max_studies_zero_turns_it_off() -> None:
    held, events, _ = cache(max_studies=0)
    assert not held.remember(HCID, manifest("1.2.3", series("1.2.3.1", 1)))
    assert held.instances(HCID, "1.2.3", retrieve_location_uid=LOC_A) is None
    assert len(held) == 0
    assert events == [CacheEvent.MISS]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=9)),
        max_size=40,
    ),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=1, max_value=15),
)
def test_bounds_hold_whatever_is_stored(
    stores: list[tuple[int, int]], max_studies: int, max_instances: int
) -> None:
    held, _, _ = cache(max_studies=max_studies, max_instances=max_instances)
    kept: dict[str, int] = {}
    for study, count in stores:
        uid = f"1.2.{study}"
        if held.remember(HCID, manifest(uid, series(f"{uid}.1", count))):
            kept[uid] = count
        assert len(held) <= max_studies
        total = 0
        for held_uid, listed in kept.items():
            found = held.instances(HCID, held_uid, retrieve_location_uid=LOC_A)
            if found is not None:
                assert len(found) == listed  # what is held is whole
                total += max(1, listed)
        assert total <= max_instances


def test_the_metric_has_one_series_per_event() -> None:
    assert MANIFEST_CACHE_EVENTS == CACHE_EVENTS
    metrics = Metrics(CollectorRegistry(), version="test")
    for event in CACHE_EVENTS:
        assert metrics.registry.get_sample_value(
            "mado_gateway_manifest_cache_events_total", {"event": event}
        ) == 0.0
