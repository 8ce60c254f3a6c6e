"""Instance identities aggregated as they stream: bounded memory, the audit trail still exact."""

from __future__ import annotations

import tracemalloc
from collections import defaultdict
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit.messages import UNKNOWN_PATIENT_ID, UNKNOWN_STUDY_UID, instances_transferred
from gateway.exchange import Exchange, InstanceSeen, Outcome
from gateway.instances import MAX_FINGERPRINTS, MAX_NODES, InstanceTally
from routing.ids import HomeCommunityId
from routing.model import Identity

IDENTITY = Identity(home_community_id=HomeCommunityId("5.6.7.8"), audit_source_id="test")
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
PATH_STUDY = "1.2.3.4.5.1"
NOT_ITEMISED = "mado-gateway:instancesNotItemised"


def relayed() -> Exchange:
    exchange = Exchange(request_id="r", method="GET", path="/wado/x", client="192.0.2.1")
    exchange.route_kind = "source"
    exchange.study_uid = PATH_STUDY
    exchange.home_community_id = "5.6.7.8"
    leg = exchange.open_leg("ids-a")
    leg.url = "https://ids.a.example.org/wado/studies/" + PATH_STUDY
    exchange.status = 200
    exchange.outcome = Outcome.COMPLETE
    return exchange


def identities(count: int, *, patients: int = 3, studies: int = 5) -> Iterator[InstanceSeen]:
    """``count`` distinct instances, every string made afresh (as a header parser makes them)."""
    for n in range(count):
        yield InstanceSeen(
            sop_class_uid=CT if n % 4 else MR,
            sop_instance_uid=f"2.25.{10**30 + n}",
            study_uid=f"1.2.3.4.5.{n % studies}",
            series_uid=f"1.2.3.4.5.{n % studies}.{n % 50}",
            patient_id=f"PAT-{n % patients}",
            patient_id_issuer="1.2.3.4.9",
            patient_name=f"DOE^PATIENT{n % patients}",
        )


Said = dict[str, tuple[str | None, dict[str, dict[str, int]]]]


def summary(exchange: Exchange) -> Said:
    """What the 110104 messages say: patient → name, study → SOP class → count."""
    out: Said = {}
    for message in instances_transferred(exchange, IDENTITY):
        patient = next(o for o in message.objects if int(o.role or 0) == 1)
        studies = {
            o.object_id: {c.uid: c.count for c in o.sop_classes}
            for o in message.objects
            if int(o.role or 0) == 3
        }
        out[patient.object_id] = (patient.name, studies)
    return out


def test_an_exchange_keeps_bounded_memory_whatever_the_instance_count() -> None:
    exchange = relayed()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for identity in identities(20_000):
            exchange.instances.append(identity)  # the spelling every relay has used
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert kept < 512 * 1024, f"the exchange kept {kept / 1e6:.1f} MB for 20,000 instances"
    # ... and the audit trail still names every patient and study, with exact counts.
    seen = summary(exchange)
    assert sorted(seen) == [f"PAT-{p}^^^&1.2.3.4.9&ISO" for p in range(3)]
    total = 0
    for name, studies in seen.values():
        assert name is not None
        assert name.startswith("DOE^PATIENT")
        assert len(studies) == 5
        total += sum(sum(classes.values()) for classes in studies.values())
    assert total == 20_000


def reference(exchange: Exchange, seen: list[InstanceSeen]) -> Said:
    """The audit content as the gateway computed it from the full list of instances."""
    groups: dict[tuple[str | None, str | None], list[InstanceSeen]] = defaultdict(list)
    for instance in seen:
        patient_id = (instance.patient_id or "").strip() or None
        issuer = (instance.patient_id_issuer or "").strip() or None if patient_id else None
        groups[(patient_id, issuer)].append(instance)
    if not groups:
        groups[(None, None)] = []
    out: Said = {}
    for (patient_id, issuer), members in groups.items():
        by_study: dict[str, dict[str, set[str]]] = {}
        for position, instance in enumerate(members):
            study = instance.study_uid or exchange.study_uid or UNKNOWN_STUDY_UID
            classes = by_study.setdefault(study, {})
            if instance.sop_class_uid:
                uids = classes.setdefault(instance.sop_class_uid, set())
                uids.add(instance.sop_instance_uid or f"#{position}")
        if not by_study:
            by_study[exchange.study_uid or UNKNOWN_STUDY_UID] = {}
        key = UNKNOWN_PATIENT_ID
        if patient_id:
            key = patient_id if not issuer else f"{patient_id}^^^{issuer}"
        name = next((i.patient_name for i in members if i.patient_name), None)
        studies = {s: {c: len(u) for c, u in sorted(cs.items())} for s, cs in by_study.items()}
        out[key] = (name, studies)
    return out


def few(*values: str | None) -> st.SearchStrategy[str | None]:
    return st.sampled_from(values)


instance_seen = st.builds(
    InstanceSeen,
    sop_class_uid=few(CT, MR, None, ""),
    sop_instance_uid=few("1.9.1", "1.9.2", "1.9.3", None, ""),
    study_uid=few(PATH_STUDY, "1.2.3.4.5.2", None),
    series_uid=few("1.2.3.1", "1.2.3.2", None),
    patient_id=few("P1", " P1 ", "P2", None, "", "  "),
    patient_id_issuer=few("HOSP_A", "HOSP_B", " HOSP_A", None, ""),
    patient_name=few("DOE^JANE", "ROE^RICHARD", None, ""),
)


@settings(max_examples=300, deadline=None)
@given(seen=st.lists(instance_seen, max_size=30))
def test_the_tally_says_what_the_list_of_instances_said(seen: list[InstanceSeen]) -> None:
    exchange = relayed()
    for identity in seen:
        exchange.note_instance(identity)
    assert summary(exchange) == reference(exchange, seen)


def test_past_the_cap_instances_are_counted_not_itemised() -> None:
    exchange = relayed()
    patients = MAX_NODES  # each needs a patient, a study, a series and a class entry
    for n in range(patients):
        exchange.note_instance(
            InstanceSeen(
                sop_class_uid=CT,
                sop_instance_uid=f"1.9.{n}",
                study_uid=f"1.2.{n}",
                series_uid=f"1.2.{n}.1",
                patient_id=f"P{n}",
                patient_id_issuer=None,
                patient_name=None,
            )
        )
    tally = exchange.instances
    kept = MAX_NODES // 4
    assert tally.not_itemised == patients - kept
    built = instances_transferred(exchange, IDENTITY)
    assert len(built) == kept + 1
    named = [next(o for o in m.objects if int(o.role or 0) == 1).object_id for m in built[:-1]]
    assert named == [f"P{n}" for n in range(kept)]  # exactly the first ones, exact counts
    last = built[-1]
    study = next(o for o in last.objects if int(o.role or 0) == 3)
    patient = next(o for o in last.objects if int(o.role or 0) == 1)
    assert (patient.object_id, study.object_id) == (UNKNOWN_PATIENT_ID, UNKNOWN_STUDY_UID)
    assert dict(study.details)[NOT_ITEMISED] == str(patients - kept).encode()


def test_repeats_are_recognised_as_the_table_grows_until_it_is_full() -> None:
    tally = InstanceTally()

    def note(n: int) -> None:
        tally.note(
            InstanceSeen(
                sop_class_uid=CT,
                sop_instance_uid=f"1.9.{n}",
                study_uid="1.2.3",
                series_uid="1.2.3.1",
                patient_id="P",
                patient_id_issuer=None,
                patient_name=None,
            )
        )

    def counted() -> int:
        (_, _, patient), = tally.patients()
        return patient.studies["1.2.3"].sop_classes()[CT]

    for n in range(5000):
        note(n)
    for n in range(5000):
        note(n)
    assert counted() == 5000 and len(tally) == 10_000 and not tally.repeats_unchecked
    for n in range(5000, MAX_FINGERPRINTS + 10):
        note(n)
    assert tally.repeats_unchecked
    note(MAX_FINGERPRINTS + 5)  # a repeat the full table can no longer recognise
    assert counted() == MAX_FINGERPRINTS + 11
