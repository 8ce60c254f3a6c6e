"""The neutral, versioned journal record (gateway.audit.record): round trip, versions, legacy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audit import messages
from gateway.audit.codes import Code
from gateway.audit.errors import JournalCorrupt, RecordError
from gateway.audit.messages import AlertKind
from gateway.audit.model import (
    ActionCode,
    AuditMessage,
    AuditSource,
    Event,
    NetworkAccessPointType,
    ObjectRole,
    ObjectType,
    Outcome,
    Participant,
    ParticipantObject,
    SopClassCount,
)
from gateway.audit.record import (
    VERSION,
    AuditRecord,
    LegacyFrame,
    decode,
    encode,
    record_version,
)
from gateway.audit.render import render
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import validate

IDENTITY = Identity(home_community_id=HomeCommunityId("5.6.7.8"), audit_source_id="gw-test")
AT = datetime(2026, 3, 16, 10, 15, 30, 120000, tzinfo=UTC)

# Any Unicode a peer could put in a header, lone surrogates included (a DICOM string decoded
# with errors="surrogateescape" carries them): the journal must keep them exactly.
texts = st.text(
    st.characters(exclude_categories=()) | st.sampled_from(["\ud800", "\udfff", "\x00"]),
    max_size=30,
)
opt_texts = st.none() | texts
codes_ = st.builds(Code, texts, texts, texts)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.just(UTC)
    | st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
)
events = st.builds(
    Event,
    id=codes_,
    action=st.sampled_from(ActionCode),
    at=moments,
    outcome=st.sampled_from(Outcome),
    types=st.lists(codes_, max_size=3).map(tuple),
    outcome_description=opt_texts,
)
participants = st.builds(
    Participant,
    user_id=texts,
    is_requestor=st.booleans(),
    roles=st.lists(codes_, max_size=2).map(tuple),
    alternative_user_id=opt_texts,
    user_name=opt_texts,
    access_point=opt_texts,
    access_point_type=st.none() | st.sampled_from(NetworkAccessPointType),
)
objects = st.builds(
    ParticipantObject,
    object_id=texts,
    type_code=st.sampled_from(ObjectType),
    id_type=codes_,
    role=st.none() | st.sampled_from(ObjectRole),
    name=opt_texts,
    details=st.lists(st.tuples(texts, st.binary(max_size=40)), max_size=2).map(tuple),
    sop_classes=st.lists(
        st.builds(SopClassCount, uid=texts, count=st.integers(0, 2**40)), max_size=3
    ).map(tuple),
)
audit_messages = st.builds(
    AuditMessage,
    event=events,
    participants=st.lists(participants, min_size=1, max_size=3).map(tuple),
    source=st.builds(
        AuditSource,
        source_id=texts,
        enterprise_site_id=opt_texts,
        type_codes=st.lists(texts, max_size=2).map(tuple),
    ),
    objects=st.lists(objects, max_size=3).map(tuple),
)
records = st.builds(
    AuditRecord,
    event=st.sampled_from(("instances-transferred", "application-activity", "security-alert")),
    recorded_at=moments,
    process_id=st.integers(1, 2**22),
    request_id=opt_texts,
    message=audit_messages,
)


@settings(max_examples=300, deadline=None)
@given(records)
def test_every_record_survives_the_round_trip(record: AuditRecord) -> None:
    payload = encode(record)
    assert payload.isascii()  # lone surrogates and all: \u escapes, never raw bytes
    assert record_version(payload) == VERSION
    back = decode(payload)
    assert back == record
    # The XML a destination renders from the decoded record is what the original gives.
    assert isinstance(back, AuditRecord)
    assert render(back.message) == render(record.message)


def test_a_real_message_renders_valid_xml_after_the_round_trip() -> None:
    message = messages.security_alert(
        IDENTITY,
        kind=AlertKind.TLS_FAILURE,
        target="https://rig.b.example.org:443",
        description="certificate verify failed",
        at=AT,
        reporter="gw-test",
        performer="192.0.2.9",
    )
    record = AuditRecord(
        event="security-alert", recorded_at=AT, process_id=42, request_id=None, message=message
    )
    back = decode(encode(record))
    assert isinstance(back, AuditRecord)
    validate(render(back.message))


def test_the_version_comes_first_and_is_cheap_to_read() -> None:
    record = AuditRecord(
        event="application-activity",
        recorded_at=AT,
        process_id=1,
        request_id="req-1",
        message=messages.application_activity(
            IDENTITY, started=True, at=AT, application="mado-gateway"
        ),
    )
    payload = encode(record)
    assert payload.startswith(b'{"v":1,')
    assert json.loads(payload)["request_id"] == "req-1"


def test_a_legacy_rendered_frame_is_version_0_and_decodes_verbatim() -> None:
    frame = b"<85>1 2026-03-16T10:15:30.120Z gw mado-gateway 7 IHE+RFC-3881 - \xef\xbb\xbf<?xml"
    assert record_version(frame) == 0
    assert decode(frame) == LegacyFrame(frame)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":2,"event":"security-alert"}',  # a newer gateway wrote it
        b'{"v":17}',
    ],
)
def test_an_unknown_version_is_a_record_error_naming_it(payload: bytes) -> None:
    with pytest.raises(RecordError, match="version") as caught:
        decode(payload)
    assert caught.value.version == record_version(payload)
    assert isinstance(caught.value, JournalCorrupt)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"garbage",
        b'{"v":1,',
        b'{"v":1,"event":"x"}',
        b'{"v":1,"event":"x","recorded_at":"2026-01-01T00:00:00","process_id":1,"message":{}}',
        b'{"v":"1"}',
        b'{"v":1,"event":3,"recorded_at":"x","process_id":1,"message":null}',
    ],
)
def test_malformed_payloads_are_record_errors_never_other_exceptions(payload: bytes) -> None:
    with pytest.raises(RecordError):
        decode(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decode_of_any_bytes_gives_a_record_or_a_record_error(payload: bytes) -> None:
    try:
        entry: object = decode(payload)
    except RecordError as exc:
        entry = exc
    assert isinstance(entry, AuditRecord | LegacyFrame | RecordError)
