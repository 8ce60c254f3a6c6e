"""The records a process journalled lately (gateway.audit.recent): what the senders get from
memory is what they would have decoded from the journal, and memory stays bounded."""

from __future__ import annotations

from hypothesis import given, settings

from gateway.audit.balp import render_fhir
from gateway.audit.destinations import SyslogRenderer
from gateway.audit.recent import RecentRecords
from gateway.audit.record import AuditRecord, LegacyFrame, decode, encode
from gateway.audit.segments import Record
from tests.unit.audit.test_audit_record import records

SYSLOG = SyslogRenderer(hostname="gw1.example.org", app_name="mado-gateway")


def journalled(record: AuditRecord, end: int) -> Record:
    payload = encode(record)
    return Record(start=end - len(payload) - 8, end=end, payload=payload)


@settings(max_examples=200, deadline=None)
@given(records)
def test_a_noted_record_renders_as_the_journalled_bytes_would(record: AuditRecord) -> None:
    recent = RecentRecords()
    read = journalled(record, 4096)
    recent.note(read.end, record, len(read.payload))
    from_memory = recent.decode(read)
    from_bytes = decode(read.payload)
    assert from_memory is record
    for render in (SYSLOG, render_fhir):
        assert render(from_memory) == render(from_bytes)


@settings(max_examples=20, deadline=None)
@given(records, records)
def test_a_record_not_noted_or_let_go_is_decoded_from_its_bytes(
    first: AuditRecord, second: AuditRecord
) -> None:
    recent = RecentRecords(max_bytes=10)
    recent.note(100, first, 6)
    recent.note(200, second, 6)  # over the limit: the first is let go
    assert recent.decode(journalled(first, 100)) == first
    assert recent.decode(journalled(first, 100)) is not first
    assert recent.decode(journalled(second, 200)) is second
    assert recent.decode(journalled(second, 300)) is not second  # another offset: the bytes


@settings(max_examples=5, deadline=None)
@given(records)
def test_memory_is_bounded_by_encoded_size_and_cleared(record: AuditRecord) -> None:
    recent = RecentRecords(max_bytes=300)
    for end in range(10):
        recent.note(end, record, 100)
    assert (len(recent), recent.bytes) == (3, 300)
    assert [recent.decode(journalled(record, end)) is record for end in range(10)] == [
        False
    ] * 7 + [True] * 3
    recent.note(10, record, 250)  # a large record lets the three older ones go
    assert (len(recent), recent.bytes) == (1, 250)
    recent.clear()
    assert (len(recent), recent.bytes) == (0, 0)


def test_a_legacy_frame_passes_through() -> None:
    frame = b"<85>1 2026-03-16T10:15:30.120Z host app 1 IHE+RFC-3881 - x"
    got = RecentRecords().decode(Record(start=0, end=len(frame) + 8, payload=frame))
    assert got == LegacyFrame(frame)


@settings(max_examples=5, deadline=None)
@given(records)
def test_a_record_larger_than_the_largest_kept_is_decoded_from_its_bytes(
    record: AuditRecord,
) -> None:
    recent = RecentRecords(largest=100)
    recent.note(1, record, 101)
    recent.note(2, record, 100)
    assert (len(recent), recent.bytes) == (1, 100)
    assert recent.decode(journalled(record, 1)) is not record
    assert recent.decode(journalled(record, 2)) is record
