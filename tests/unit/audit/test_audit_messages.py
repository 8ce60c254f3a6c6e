"""Message builders (PS3.15 A.5.3): content rules, outcomes, transactions, schema validity
(every message rendered here validates against the XSD and both editions of PS3.15 A.5.1)."""

from __future__ import annotations

import base64
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.audit import messages
from gateway.audit.messages import AlertKind, instances_transferred, patient_cx
from gateway.audit.model import AuditMessage, Outcome
from gateway.audit.render import render
from gateway.exchange import Attempt, Exchange, InstanceSeen
from gateway.exchange import Outcome as ExchangeOutcome
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import check_instances_transferred, roles_of, validate

ROOT = Path(__file__).resolve().parents[3]
IDENTITY = Identity(
    home_community_id=HomeCommunityId("5.6.7.8"),
    audit_source_id="rig.a.example.org",
    enterprise_site_id="CommunityA",
)
CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
AT = datetime(2026, 3, 16, 10, 15, 30, tzinfo=UTC)


def instance(
    sop: str,
    *,
    patient: str | None,
    issuer: str | None = "1.2.3.4.9",
    study: str = "1.2.3.4.5.1",
    sop_class: str = CT,
    name: str | None = None,
) -> InstanceSeen:
    return InstanceSeen(
        sop_class_uid=sop_class,
        sop_instance_uid=sop,
        study_uid=study,
        series_uid=study + ".1",
        patient_id=patient,
        patient_id_issuer=issuer,
        patient_name=name,
    )


def exchange(**overrides: object) -> Exchange:
    values: dict[str, object] = {
        "request_id": "r1",
        "method": "GET",
        "path": "/wado/homeCommunityId/5.6.7.8/RetrieveLocationUID/5.6.7.8.200/studies/1.2.3.4.5.1",
        "client": "192.0.2.77",
        "started_wall": AT.timestamp(),
        "route_kind": "source",
        "resource": "instances",
        "upstream": "ids-a",
        "upstream_url": "https://ids.a.example.org/pacs/wado-rs/studies/1.2.3.4.5.1?x=1",
        "home_community_id": "5.6.7.8",
        "study_uid": "1.2.3.4.5.1",
        "status": 200,
        "outcome": ExchangeOutcome.COMPLETE,
        "attempts": 1,
        "duration_s": 1.5,
    }
    values.update(overrides)
    upstream, url = values.pop("upstream"), values.pop("upstream_url")
    attempts, seen = values.pop("attempts"), values.pop("instances", [])
    built = Exchange(**values)  # type: ignore[arg-type]
    if upstream is not None:  # the upstream leg: tried `attempts` times, last at `url`
        leg = built.open_leg(str(upstream))
        leg.url = None if url is None else str(url)
        leg.attempts += [Attempt(base_url="https://ids.a.example.org/pacs/wado-rs/")] * int(
            str(attempts)
        )
    for identity in seen:  # type: ignore[attr-defined]
        built.note_instance(identity)
    return built


def parsed(message: AuditMessage) -> etree._Element:
    return validate(render(message))


@pytest.mark.checklist(46, 47, 48, 49, 50)
def test_one_message_per_patient() -> None:
    seen = [
        instance("1.9.1", patient="PAT-1", name="DOE^JANE"),
        instance("1.9.2", patient="PAT-1"),
        instance("1.9.3", patient="PAT-1", sop_class=MR),
        instance("1.9.4", patient="PAT-2", study="1.2.3.4.5.2"),
    ]
    built = instances_transferred(exchange(instances=seen), IDENTITY)
    assert len(built) == 2
    roots = [parsed(message) for message in built]
    for root in roots:
        check_instances_transferred(root)
    first, second = roots
    patient = first.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']")
    assert patient.get("ParticipantObjectID") == "PAT-1^^^&1.2.3.4.9&ISO"
    assert patient.findtext("ParticipantObjectName") == "DOE^JANE"
    counts = {s.get("UID"): s.get("NumberOfInstances") for s in first.iter("SOPClass")}
    assert counts == {CT: "2", MR: "1"}
    study = second.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='3']")
    assert study.get("ParticipantObjectID") == "1.2.3.4.5.2"
    detail = study.find("ParticipantObjectDetail")
    assert detail.get("type") == "ihe:homeCommunityID"
    assert base64.b64decode(detail.get("value")) == b"urn:oid:5.6.7.8"


def test_repeated_instance_counts_once() -> None:
    seen = [instance("1.9.1", patient="P"), instance("1.9.1", patient="P")]
    root = parsed(instances_transferred(exchange(instances=seen), IDENTITY)[0])
    assert [s.get("NumberOfInstances") for s in root.iter("SOPClass")] == ["1"]


def test_without_instances_the_path_study_and_an_unknown_patient() -> None:
    built = instances_transferred(exchange(resource="metadata"), IDENTITY)
    assert len(built) == 1
    root = parsed(built[0])
    check_instances_transferred(root)
    ids = [o.get("ParticipantObjectID") for o in root.iter("ParticipantObjectIdentification")]
    assert ids == ["1.2.3.4.5.1", messages.UNKNOWN_PATIENT_ID, "r1"]
    assert list(root.iter("SOPClass")) == []


def test_instances_without_patient_id_form_their_own_message() -> None:
    seen = [instance("1.9.1", patient="P"), instance("1.9.2", patient=None)]
    built = instances_transferred(exchange(instances=seen), IDENTITY)
    patients = sorted(
        parsed(m)
        .find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']")
        .get("ParticipantObjectID")
        for m in built
    )
    assert patients == ["P^^^&1.2.3.4.9&ISO", "UNKNOWN"]


def test_no_message_when_no_upstream_was_contacted() -> None:
    refused = exchange(
        attempts=0, upstream=None, upstream_url=None, status=403, outcome=ExchangeOutcome.REFUSED
    )
    assert instances_transferred(refused, IDENTITY) == []


def test_participants_source_the_gateway_destination_the_requester() -> None:
    root = parsed(instances_transferred(exchange(), IDENTITY, host="gw1.a.example.org")[0])
    by_role = roles_of(root)
    source, destination = by_role["110153"], by_role["110152"]
    assert source.get("UserID") == "rig.a.example.org"  # the gateway's audit identity
    assert source.get("UserIsRequestor") == "false"
    assert source.get("NetworkAccessPointID") == "gw1.a.example.org"
    assert source.get("NetworkAccessPointTypeCode") == "1"
    assert destination.get("UserID") == "192.0.2.77"
    assert destination.get("UserIsRequestor") == "true"
    assert destination.get("NetworkAccessPointTypeCode") == "2"
    source_id = root.find("AuditSourceIdentification")
    assert source_id.get("AuditSourceID") == "rig.a.example.org"
    assert source_id.get("AuditEnterpriseSiteID") == "CommunityA"


def test_destination_is_named_by_its_verified_certificate_subject() -> None:
    relayed = exchange()
    relayed.client_subject = "CN=initiating-gateway-b,O=Community B"
    root = parsed(instances_transferred(relayed, IDENTITY)[0])
    destination = roles_of(root)["110152"]
    assert destination.get("UserID") == "CN=initiating-gateway-b,O=Community B"
    assert destination.get("NetworkAccessPointID") == "192.0.2.77"  # where it connected from
    assert destination.get("NetworkAccessPointTypeCode") == "2"


@pytest.mark.parametrize("route", ["relay", "source", "retrieve-url"])
def test_the_inbound_leg_is_rad160_alone_whatever_the_route(route: str) -> None:
    root = parsed(instances_transferred(exchange(route_kind=route), IDENTITY)[0])
    assert [c.get("csd-code") for c in root.iter("EventTypeCode")] == ["RAD-160"]
    assert {c.get("codeSystemName") for c in root.iter("EventTypeCode")} == {"IHE Transactions"}


@pytest.mark.parametrize(
    ("outcome", "status", "expected"),
    [
        (ExchangeOutcome.COMPLETE, 200, Outcome.SUCCESS),
        (ExchangeOutcome.COMPLETE, 206, Outcome.MINOR_FAILURE),
        (ExchangeOutcome.COMPLETE, 404, Outcome.MINOR_FAILURE),
        (ExchangeOutcome.FAILED, 404, Outcome.MINOR_FAILURE),
        (ExchangeOutcome.ABORTED, 200, Outcome.SERIOUS_FAILURE),
        (ExchangeOutcome.FAILED, 502, Outcome.MAJOR_FAILURE),
        (ExchangeOutcome.COMPLETE, 503, Outcome.MAJOR_FAILURE),
    ],
)
@pytest.mark.checklist(51)
def test_outcome_reflects_what_happened(
    outcome: ExchangeOutcome, status: int, expected: Outcome
) -> None:
    built = instances_transferred(exchange(outcome=outcome, status=status), IDENTITY)
    root = parsed(built[0])
    assert root.find("EventIdentification").get("EventOutcomeIndicator") == str(int(expected))


@pytest.mark.checklist(51)
def test_aborted_transfer_is_not_a_success_for_any_patient() -> None:
    seen = [instance("1.9.1", patient="A"), instance("1.9.2", patient="B")]
    built = instances_transferred(
        exchange(outcome=ExchangeOutcome.ABORTED, error="truncated", instances=seen), IDENTITY
    )
    assert {m.event.outcome for m in built} == {Outcome.SERIOUS_FAILURE}


@pytest.mark.parametrize(
    ("patient", "issuer", "expected"),
    [
        ("PAT-1", "1.2.3", "PAT-1^^^&1.2.3&ISO"),
        ("PAT-1", "urn:oid:1.2.3", "PAT-1^^^&1.2.3&ISO"),
        ("PAT-1", "HOSP_A", "PAT-1^^^HOSP_A"),
        ("PAT-1", None, "PAT-1"),
        ("A^B&C~D|E\\F", None, "A\\S\\B\\T\\C\\R\\D\\F\\E\\E\\F"),
    ],
)
def test_patient_cx(patient: str, issuer: str | None, expected: str) -> None:
    assert patient_cx(patient, issuer) == expected


@pytest.mark.parametrize("kind", list(AlertKind))
def test_security_alert_names_its_target(kind: AlertKind) -> None:
    target = 'https://evil.example.net/wado?x=<1>&y="2"'
    message = messages.security_alert(
        IDENTITY,
        kind=kind,
        target=target,
        description="refused: origin not allowed",
        at=AT,
        reporter="rig.a.example.org",
        performer="192.0.2.77",
    )
    root = parsed(message)
    assert root.find("EventIdentification/EventID").get("csd-code") == "110113"
    assert root.find("EventIdentification").get("EventActionCode") == "E"
    types = [c.get("csd-code") for c in root.iter("EventTypeCode")]
    assert len(types) == 1
    assert types[0] in {"110126", "110129", "110132", "110133", "110134"}
    subject = root.find("ParticipantObjectIdentification")
    assert subject.get("ParticipantObjectID") == target
    description = subject.find("ParticipantObjectDetail[@type='Alert Description']")
    assert base64.b64decode(description.get("value")) == b"refused: origin not allowed"
    requestors = [p.get("UserIsRequestor") for p in root.iter("ActiveParticipant")]
    assert requestors == ["true", "false"]


def test_tls_failure_is_node_authentication() -> None:
    message = messages.security_alert(
        IDENTITY,
        kind=AlertKind.TLS_FAILURE,
        target="https://rig.b.example.org:443",
        description="certificate verify failed",
        at=AT,
        reporter="gw",
    )
    assert [c.code for c in message.event.types] == ["110126"]


@pytest.mark.checklist(52)
@pytest.mark.parametrize(("started", "code"), [(True, "110120"), (False, "110121")])
def test_application_activity(started: bool, code: str) -> None:
    message = messages.application_activity(
        IDENTITY,
        started=started,
        at=AT,
        application="mado-gateway",
        process_id="42",
        launcher="gateway",
    )
    root = parsed(message)
    assert root.find("EventIdentification/EventID").get("csd-code") == "110100"
    assert [c.get("csd-code") for c in root.iter("EventTypeCode")] == [code]
    assert [c.get("csd-code") for c in root.iter("RoleIDCode")] == ["110150", "110151"]


@settings(max_examples=150, deadline=None)
@given(
    patient=st.text(min_size=1, max_size=40),
    name=st.text(max_size=40),
    client=st.text(min_size=1, max_size=30),
)
def test_any_text_gives_a_valid_single_line_document(patient: str, name: str, client: str) -> None:
    seen = [instance("1.9.1", patient=patient, issuer=None, name=name or None)]
    for message in instances_transferred(exchange(instances=seen, client=client), IDENTITY):
        xml = render(message)
        assert b"\n" not in xml
        assert b"\r" not in xml
        validate(xml)


def test_builders_load_no_asyncio_or_aiohttp() -> None:
    code = (
        "import sys, gateway.audit.messages, gateway.audit.retrieves, gateway.audit.record,"
        " gateway.audit.render, gateway.audit.syslog, gateway.audit.transfers,"
        " gateway.audit.objects, gateway.audit.participants;"
        "print(','.join(m for m in ('aiohttp', 'asyncio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == ""
