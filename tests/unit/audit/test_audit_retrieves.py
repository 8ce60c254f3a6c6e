"""Audit messages of SOAP retrieves (RAD-69 / RAD-75): gateway.audit.retrieves.

Every message built here is rendered and validated against the XSD beside these tests and
the PS3.15 A.5.1 RELAX NG schema of the shared folder (``auditcheck.validate_both``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from prometheus_client import CollectorRegistry

from gateway.audit import retrieves
from gateway.audit.messages import UNKNOWN_PATIENT_ID, instances_transferred
from gateway.audit.model import AuditMessage, Outcome
from gateway.audit.record import AuditRecord, decode, encode
from gateway.audit.render import render
from gateway.audit.retrieves import (
    MAX_DOCUMENTS,
    documents_accessed,
    documents_transferred,
    messages_for,
)
from gateway.audit.service import AuditService
from gateway.audit.syslog import SyslogHeader, format_message
from gateway.audit.transfers import instances_accessed
from gateway.audit.transports import UDP_MAX_PAYLOAD
from gateway.exchange import DocumentOutcome, Exchange, InstanceSeen, StreamEnd
from gateway.exchange import Outcome as ExchangeOutcome
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import request_id_of, settings_for, validate_both

IDENTITY = Identity(
    home_community_id=HomeCommunityId("1.2.3.4.5"),
    audit_source_id="rig.a.example.org",
    enterprise_site_id="CommunityA",
)
AT = datetime(2026, 3, 16, 10, 15, 30, tzinfo=UTC)
CT = "1.2.840.10008.5.1.4.1.1.2"
OWN = "urn:oid:1.2.3.4.5"
REMOTE = "1.2.3.9.9"  # without urn:oid: as a peer may write it
REPO_A = "1.2.3.4.5.100"
REPO_B = "1.2.3.4.5.200"
XCA = "urn:ihe:iti:xca:2010:homeCommunityId"
RAD69_HCID = "ihe:homeCommunityID"


def document(
    n: int,
    *,
    study: str = "1.2.3.7.1",
    upstream: str | None = "ids-a",
    error: str | None = None,
    repository: str = REPO_A,
    community: str | None = OWN,
) -> DocumentOutcome:
    return DocumentOutcome(
        study_uid=study,
        series_uid=f"{study}.1",
        document_uid=f"{study}.1.{n}",
        repository_id=repository,
        home_community_id=community,
        error_code=error,
        upstream=upstream,
    )


def seen(doc: DocumentOutcome, patient: str | None, name: str | None = None) -> InstanceSeen:
    """The header of a returned document, as the part scanner reads it."""
    return InstanceSeen(
        sop_class_uid=CT,
        sop_instance_uid=doc.document_uid,
        study_uid=doc.study_uid,
        series_uid=doc.series_uid,
        patient_id=patient,
        patient_id_issuer="1.2.3.4.9" if patient else None,
        patient_name=name,
    )


def soap(
    transaction: str,
    documents: list[DocumentOutcome],
    *,
    legs: tuple[tuple[str, str, str], ...] = (
        ("ids-a", "RAD-69", "https://ids.a.example.org/xdsi/rad69?wsdl"),
    ),
    patients: dict[str, str | None] | None = None,
    outcome: ExchangeOutcome = ExchangeOutcome.COMPLETE,
    status: int = 200,
) -> Exchange:
    """A finished SOAP retrieve: ``legs`` are (upstream, transaction, URL), each answered
    200 in whole; ``patients`` maps the returned documents' uids to the Patient ID their
    header gave (absent: not seen)."""
    exchange = Exchange(
        request_id="soap-1",
        method="POST",
        path="/xca/iig" if transaction == "RAD-69" else "/xca/rig",
        client="192.0.2.77",
        started_wall=AT.timestamp(),
        transaction=transaction,
        status=status,
        outcome=outcome,
        duration_s=2.5,
    )
    for upstream, leg_transaction, url in legs:
        leg = exchange.open_leg(upstream)
        leg.transaction = leg_transaction
        leg.url = url
        leg.status = 200
        leg.end = StreamEnd.COMPLETE
        leg.end_s = 1.5
    exchange.documents.extend(documents)
    for doc in documents:
        if patients is not None and doc.document_uid in patients:
            exchange.note_instance(seen(doc, patients[doc.document_uid], name="DOE^JANE"))
    return exchange


def parsed(message: AuditMessage) -> etree._Element:
    """Render, validate against both schemas, and check the PS3.15 rules every message of
    a SOAP retrieve obeys (A.5.3.6 / A.5.3.7)."""
    root = validate_both(render(message))
    event = root.find("EventIdentification")
    assert event.find("EventID").get("csd-code") in {"110103", "110104"}
    assert event.get("EventActionCode") == "R"
    roles = [code.get("csd-code") for code in root.iter("RoleIDCode")]
    assert sorted(roles) == ["110152", "110153"]
    objects = root.findall("ParticipantObjectIdentification")
    patients = [o for o in objects if o.get("ParticipantObjectTypeCodeRole") == "1"]
    assert len(patients) == 1
    assert patients[0].get("ParticipantObjectTypeCode") == "1"
    assert patients[0].find("ParticipantObjectIDTypeCode").get("csd-code") == "2"
    studies = [o for o in objects if o.get("ParticipantObjectTypeCodeRole") == "3"]
    assert 1 <= len(studies) <= MAX_DOCUMENTS
    assert len(studies) + 2 == len(objects)  # and the patient, and the request
    assert request_id_of(root)  # the exchange's request id, on every message
    for study in studies:
        assert study.get("ParticipantObjectTypeCode") == "2"
        assert study.find("ParticipantObjectIDTypeCode").get("csd-code") == "110180"
    return root


def event_id(root: etree._Element) -> str:
    return str(root.find("EventIdentification/EventID").get("csd-code"))


def outcome(root: etree._Element) -> int:
    return int(root.find("EventIdentification").get("EventOutcomeIndicator"))


def types(root: etree._Element) -> list[str]:
    return [code.get("csd-code") for code in root.iter("EventTypeCode")]


def patient_of(root: etree._Element) -> str:
    patient = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']")
    return str(patient.get("ParticipantObjectID"))


def studies(root: etree._Element) -> list[tuple[str, dict[str, str]]]:
    """(Study UID, {detail type: decoded value}) of each study object, in order."""
    return [
        (
            str(study.get("ParticipantObjectID")),
            {
                str(d.get("type")): base64.b64decode(d.get("value")).decode()
                for d in study.iter("ParticipantObjectDetail")
            },
        )
        for study in root.iter("ParticipantObjectIdentification")
        if study.get("ParticipantObjectTypeCodeRole") == "3"
    ]


def by_role(root: etree._Element) -> dict[str, etree._Element]:
    return {p.find("RoleIDCode").get("csd-code"): p for p in root.iter("ActiveParticipant")}


def everything(exchange: Exchange) -> list[etree._Element]:
    return [parsed(message) for _, message in messages_for(exchange, IDENTITY)]


# -- events, types and details (xcai-digest §9 item 38) ----------------------------------------------


@pytest.mark.xcai(38)
def test_rig_answering_rad75_transfers_and_accesses_each_source() -> None:
    docs = [
        document(1, repository=REPO_A, upstream="ids-a"),
        document(2, repository=REPO_B, upstream="ids-b"),
    ]
    exchange = soap(
        "RAD-75",
        docs,
        legs=(
            ("ids-a", "RAD-69", "https://ids.a.example.org/xdsi/rad69"),
            ("ids-b", "RAD-69", "https://ids.b.example.org/xdsi/rad69"),
        ),
        patients={docs[0].document_uid: "P1", docs[1].document_uid: "P1"},
    )
    labelled = list(messages_for(exchange, IDENTITY))
    assert [label for label, _ in labelled] == [
        "instances-accessed",
        "instances-accessed",
        "instances-transferred",
    ]
    accessed_a, accessed_b, transferred = (parsed(message) for _, message in labelled)
    assert [event_id(r) for r in (accessed_a, accessed_b, transferred)] == [
        "110103",
        "110103",
        "110104",
    ]
    assert types(accessed_a) == types(accessed_b) == ["RAD-69"]
    assert types(transferred) == ["RAD-75"]
    code = transferred.find("EventIdentification/EventTypeCode")
    assert (code.get("codeSystemName"), code.get("originalText")) == (
        "IHE Transactions",
        "Cross Gateway Retrieve Imaging Document Set",
    )
    assert studies(transferred) == [
        (
            "1.2.3.7.1",
            {
                "ihe:DocumentUniqueId": doc.document_uid,
                "Series Instance Unique Id": doc.series_uid,
                "Repository Unique Id": doc.repository_id,
                XCA: OWN,
            },
        )
        for doc in docs
    ]
    # Each RAD-69 leg names the documents its source answered for, with RAD-69's detail.
    assert studies(accessed_a) == [
        (
            "1.2.3.7.1",
            {
                "ihe:DocumentUniqueId": docs[0].document_uid,
                "Series Instance Unique Id": docs[0].series_uid,
                "Repository Unique Id": REPO_A,
                RAD69_HCID: OWN,
            },
        )
    ]
    assert [uid for uid, _ in studies(accessed_b)] == ["1.2.3.7.1"]
    assert studies(accessed_b)[0][1]["ihe:DocumentUniqueId"] == docs[1].document_uid


@pytest.mark.xcai(38)
def test_iig_sending_rad75_accesses_and_answering_rad69_transfers() -> None:
    docs = [document(1, community=REMOTE, upstream="rig-b", repository="1.2.3.9.9.1")]
    exchange = soap(
        "RAD-69",
        docs,
        legs=(("rig-b", "RAD-75", "https://rig.b.example.org/xca/rad75"),),
        patients={docs[0].document_uid: "P1"},
    )
    accessed, transferred = everything(exchange)
    assert (event_id(accessed), types(accessed)) == ("110103", ["RAD-75"])
    assert (event_id(transferred), types(transferred)) == ("110104", ["RAD-69"])
    [(_, leg_details)] = studies(accessed)
    [(_, inbound_details)] = studies(transferred)
    assert leg_details[XCA] == "urn:oid:1.2.3.9.9"  # the urn:oid: spelling
    assert RAD69_HCID not in leg_details
    assert inbound_details[RAD69_HCID] == "urn:oid:1.2.3.9.9"
    assert XCA not in inbound_details
    assert leg_details["Repository Unique Id"] == "1.2.3.9.9.1"


def test_documents_from_wado_rs_give_the_rad107_leg_its_own_accessed_event() -> None:
    docs = [
        document(1, upstream="pacs"),
        document(2, upstream=None, error="XDSUnknownRepositoryId"),
    ]
    exchange = soap(
        "RAD-75",
        docs,
        legs=(("pacs", "RAD-107", "https://pacs.a.example.org/wado-rs/studies/1.2.3.7.1"),),
        patients={docs[0].document_uid: "P1"},
    )
    [accessed] = [parsed(m) for m in documents_accessed(exchange, IDENTITY)]
    assert (event_id(accessed), types(accessed)) == ("110103", ["RAD-107"])
    source = by_role(accessed)["110153"]
    assert source.get("UserID") == "https://pacs.a.example.org/wado-rs/"  # no identifiers
    [(_, details)] = studies(accessed)
    assert details["ihe:DocumentUniqueId"] == docs[0].document_uid
    assert details[RAD69_HCID] == OWN
    accessed_again, returned, failed = everything(exchange)
    assert types(accessed_again) == ["RAD-107"]
    assert types(returned) == types(failed) == ["RAD-75"]  # one transaction per message


def test_a_dispatch_for_rad160_is_its_outbound_leg_then_its_inbound_leg() -> None:
    exchange = Exchange(
        request_id="r", method="GET", path="/wado/x", client="192.0.2.1", started_wall=0.0
    )
    exchange.study_uid = "1.2.3"
    exchange.outcome = ExchangeOutcome.COMPLETE
    exchange.status = 200
    exchange.route_kind = "relay"
    leg = exchange.open_leg("rig-b")
    leg.url = "https://rig.b.example.org/wado/studies/1.2.3"
    assert list(messages_for(exchange, IDENTITY)) == [
        *(("instances-accessed", m) for m in instances_accessed(exchange, IDENTITY)),
        *(("instances-transferred", m) for m in instances_transferred(exchange, IDENTITY)),
    ]
    assert len(list(messages_for(exchange, IDENTITY))) == 2
    assert documents_transferred(exchange, IDENTITY) == []


# -- participants (xcai-digest §9 item 39) -------------------------------------------------------------


@pytest.mark.xcai(39)
def test_the_gateway_sends_the_images_to_the_requester() -> None:
    docs = [document(1)]
    exchange = soap("RAD-75", docs, patients={docs[0].document_uid: "P1"})
    exchange.client_subject = "CN=iig.b.example.org,O=Community B"
    [transferred] = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    roles = by_role(transferred)
    source, destination = roles["110153"], roles["110152"]
    assert source.get("UserID") == "rig.a.example.org"
    assert source.get("UserIsRequestor") == "false"
    assert destination.get("UserID") == "CN=iig.b.example.org,O=Community B"
    assert destination.get("UserIsRequestor") == "true"
    assert destination.get("NetworkAccessPointID") == "192.0.2.77"
    assert destination.get("NetworkAccessPointTypeCode") == "2"


@pytest.mark.xcai(39)
def test_the_upstream_sends_the_images_to_the_gateway() -> None:
    docs = [document(1)]
    exchange = soap("RAD-75", docs, patients={docs[0].document_uid: "P1"})
    [accessed] = [parsed(m) for m in documents_accessed(exchange, IDENTITY)]
    roles = by_role(accessed)
    source, destination = roles["110153"], roles["110152"]
    assert source.get("UserID") == "https://ids.a.example.org/xdsi/rad69"  # without query
    assert source.get("AlternativeUserID") == "ids-a"
    assert source.get("UserIsRequestor") == "false"
    assert source.get("NetworkAccessPointID") == "ids.a.example.org"
    assert source.get("NetworkAccessPointTypeCode") == "1"
    assert destination.get("UserID") == "rig.a.example.org"
    assert destination.get("UserIsRequestor") == "true"
    audit_source = accessed.find("AuditSourceIdentification")
    assert audit_source.get("AuditSourceID") == "rig.a.example.org"


# -- patients and outcome sets (xcai-digest §9 items 38, 40) ---------------------------------------------


@pytest.mark.xcai(38, 40)
def test_one_message_per_patient_and_per_outcome_set() -> None:
    a1, a2 = document(1, study="1.2.3.7.1"), document(2, study="1.2.3.7.1")
    b1 = document(3, study="1.2.3.7.2")
    lost = document(4, study="1.2.3.7.1", error="XDSDocumentUniqueIdError")
    exchange = soap(
        "RAD-75",
        [a1, lost, b1, a2],
        patients={a1.document_uid: "PA", a2.document_uid: "PA", b1.document_uid: "PB"},
    )
    transferred = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    summary = [
        (patient_of(r), outcome(r), [s[1]["ihe:DocumentUniqueId"] for s in studies(r)])
        for r in transferred
    ]
    assert summary == [
        ("PA^^^&1.2.3.4.9&ISO", 0, [a1.document_uid, a2.document_uid]),
        ("PB^^^&1.2.3.4.9&ISO", 0, [b1.document_uid]),
        (UNKNOWN_PATIENT_ID, 4, [lost.document_uid]),
    ]
    accessed = [parsed(m) for m in documents_accessed(exchange, IDENTITY)]
    assert [(patient_of(r), outcome(r)) for r in accessed] == [
        ("PA^^^&1.2.3.4.9&ISO", 0),
        ("PB^^^&1.2.3.4.9&ISO", 0),
        (UNKNOWN_PATIENT_ID, 4),
    ]


@pytest.mark.xcai(40)
def test_the_patient_comes_from_the_returned_headers() -> None:
    docs = [document(1)]
    exchange = soap("RAD-69", docs, patients={docs[0].document_uid: "PAT^1"})
    for root in everything(exchange):
        patient = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']")
        assert patient.get("ParticipantObjectID") == "PAT\\S\\1^^^&1.2.3.4.9&ISO"
        assert patient.findtext("ParticipantObjectName") == "DOE^JANE"


@pytest.mark.xcai(40)
def test_without_a_patient_in_the_headers_the_event_is_still_emitted_and_flagged() -> None:
    unseen, anonymous = document(1, study="1.2.3.7.1"), document(2, study="1.2.3.7.2")
    exchange = soap("RAD-75", [unseen, anonymous], patients={anonymous.document_uid: None})
    roots = everything(exchange)
    assert [(event_id(r), outcome(r), patient_of(r)) for r in roots] == [
        ("110103", 0, UNKNOWN_PATIENT_ID),
        ("110104", 0, UNKNOWN_PATIENT_ID),
    ]
    assert [uid for uid, _ in studies(roots[1])] == ["1.2.3.7.1", "1.2.3.7.2"]


@pytest.mark.xcai(40)
def test_a_study_two_patients_hold_is_nobodys() -> None:
    docs = [document(1), document(2)]
    exchange = soap("RAD-75", docs)
    # Two headers of one series naming different patients: neither can be chosen.
    exchange.note_instance(seen(docs[0], "PA"))
    exchange.note_instance(seen(docs[1], "PB"))
    [root] = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    assert patient_of(root) == UNKNOWN_PATIENT_ID


def test_the_series_decides_when_the_study_is_shared() -> None:
    mine = document(1)
    other = DocumentOutcome(
        study_uid=mine.study_uid,
        series_uid="1.2.3.7.1.2",
        document_uid="1.2.3.7.1.2.1",
        repository_id=REPO_A,
        home_community_id=OWN,
        upstream="ids-a",
    )
    exchange = soap(
        "RAD-75", [mine, other], patients={mine.document_uid: "PA", other.document_uid: "PB"}
    )
    roots = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    assert [patient_of(r) for r in roots] == ["PA^^^&1.2.3.4.9&ISO", "PB^^^&1.2.3.4.9&ISO"]


# -- failed documents and outcomes -----------------------------------------------------------


@pytest.mark.xcai(38, 40)
def test_failed_documents_carry_their_error_and_no_patient() -> None:
    returned = document(1)
    lost = document(2, error="urn:dicom:wado:0007")
    unrouted = document(3, upstream=None, error="XDSUnknownRepositoryId", repository="9.9")
    exchange = soap("RAD-75", [returned, lost, unrouted], patients={returned.document_uid: "P"})
    transferred = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    assert [(outcome(r), patient_of(r)) for r in transferred] == [
        (0, "P^^^&1.2.3.4.9&ISO"),
        (4, UNKNOWN_PATIENT_ID),
    ]
    assert "mado-gateway:registryErrorCode" not in studies(transferred[0])[0][1]
    errors = [details["mado-gateway:registryErrorCode"] for _, details in studies(transferred[1])]
    assert errors == ["urn:dicom:wado:0007", "XDSUnknownRepositoryId"]
    # The upstream answered for two documents; the third was never asked of anyone.
    accessed = [parsed(m) for m in documents_accessed(exchange, IDENTITY)]
    assert [len(studies(r)) for r in accessed] == [1, 1]


@pytest.mark.parametrize(
    ("exchange_outcome", "status", "returned", "failed"),
    [
        (ExchangeOutcome.COMPLETE, 200, Outcome.SUCCESS, Outcome.MINOR_FAILURE),
        (ExchangeOutcome.ABORTED, 200, Outcome.SERIOUS_FAILURE, Outcome.SERIOUS_FAILURE),
        (ExchangeOutcome.FAILED, 502, Outcome.MAJOR_FAILURE, Outcome.MAJOR_FAILURE),
    ],
)
def test_the_answer_decides_each_sets_outcome(
    exchange_outcome: ExchangeOutcome, status: int, returned: Outcome, failed: Outcome
) -> None:
    docs = [document(1), document(2, error="XDSRepositoryError")]
    exchange = soap("RAD-75", docs, outcome=exchange_outcome, status=status)
    built = documents_transferred(exchange, IDENTITY)
    for message in built:
        parsed(message)
    assert [message.event.outcome for message in built] == [returned, failed]


@pytest.mark.parametrize(
    ("status", "end", "returned", "failed"),
    [
        (200, StreamEnd.COMPLETE, Outcome.SUCCESS, Outcome.MINOR_FAILURE),
        (200, StreamEnd.TRUNCATED, Outcome.SERIOUS_FAILURE, Outcome.SERIOUS_FAILURE),
        (200, StreamEnd.STALLED, Outcome.SERIOUS_FAILURE, Outcome.SERIOUS_FAILURE),
        (400, StreamEnd.COMPLETE, Outcome.MINOR_FAILURE, Outcome.MINOR_FAILURE),
        (500, StreamEnd.COMPLETE, Outcome.MAJOR_FAILURE, Outcome.MAJOR_FAILURE),
        (None, None, Outcome.MAJOR_FAILURE, Outcome.MAJOR_FAILURE),
    ],
)
def test_the_legs_answer_decides_each_accessed_outcome(
    status: int | None, end: StreamEnd | None, returned: Outcome, failed: Outcome
) -> None:
    docs = [document(1), document(2, error="XDSRepositoryError")]
    exchange = soap("RAD-75", docs)
    leg = exchange.legs[0]
    leg.status, leg.end = status, end
    built = documents_accessed(exchange, IDENTITY)
    for message in built:
        parsed(message)
    assert [message.event.outcome for message in built] == [returned, failed]


def test_nothing_for_a_refused_exchange_or_one_without_documents() -> None:
    refused = soap("RAD-75", [document(1)], outcome=ExchangeOutcome.REFUSED, status=403)
    assert documents_transferred(refused, IDENTITY) == []
    assert list(messages_for(soap("RAD-69", [], legs=()), IDENTITY)) == []


def test_a_leg_that_sent_nothing_accessed_nothing() -> None:
    exchange = soap("RAD-69", [document(1, error="XDSUnavailableCommunity", upstream="rig-b")])
    exchange.legs[0].upstream = "rig-b"
    exchange.legs[0].url = None  # refused before a request left
    assert documents_accessed(exchange, IDENTITY) == []
    [transferred] = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    assert outcome(transferred) == 4


def test_times_are_the_legs_end_and_the_exchanges_end() -> None:
    exchange = soap("RAD-75", [document(1)])
    accessed, transferred = (message for _, message in messages_for(exchange, IDENTITY))
    assert accessed.event.at == datetime.fromtimestamp(AT.timestamp() + 1.5, UTC)
    assert transferred.event.at == datetime.fromtimestamp(AT.timestamp() + 2.5, UTC)


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=80),
    community=st.none() | st.text(max_size=80),
    error=st.none() | st.text(max_size=200),
    patient=st.none() | st.text(min_size=1, max_size=40),
)
def test_whatever_a_peer_writes_gives_valid_messages(
    text: str, community: str | None, error: str | None, patient: str | None
) -> None:
    odd = DocumentOutcome(
        study_uid=text,
        series_uid=text,
        document_uid=text,
        repository_id=text,
        home_community_id=community,
        error_code=error,
        upstream="ids-a",
    )
    exchange = soap("RAD-75", [odd, document(1)], patients={odd.document_uid: patient})
    built = messages_for(exchange, IDENTITY)
    assert [label for label, _ in built].count("instances-transferred") >= 1
    for _, message in built:
        xml = render(message)
        assert b"\n" not in xml
        parsed(message)


# -- size ----------------------------------------------------------------------------------


def test_large_sets_are_split_in_request_order() -> None:
    docs = [document(n) for n in range(2 * MAX_DOCUMENTS + 1)]
    exchange = soap("RAD-75", docs, patients=dict.fromkeys((d.document_uid for d in docs), "P"))
    roots = [parsed(m) for m in documents_transferred(exchange, IDENTITY)]
    assert [len(studies(r)) for r in roots] == [MAX_DOCUMENTS, MAX_DOCUMENTS, 1]
    listed = [details["ihe:DocumentUniqueId"] for r in roots for _, details in studies(r)]
    assert listed == [d.document_uid for d in docs]
    assert {patient_of(r) for r in roots} == {"P^^^&1.2.3.4.9&ISO"}


def test_a_full_message_of_conforming_identifiers_fits_one_datagram() -> None:
    uid = "1." + "2" * 62  # 64 characters, the longest a UID may be
    docs = [
        DocumentOutcome(
            study_uid=uid,
            series_uid=uid,
            document_uid=uid,
            repository_id=uid,
            home_community_id="urn:oid:" + uid,
            error_code="E" * 500,
            upstream="ids-a",
        )
        for _ in range(MAX_DOCUMENTS)
    ]
    exchange = soap("RAD-75", docs)
    exchange.client_subject = "CN=" + "x" * 200
    [message] = documents_transferred(exchange, IDENTITY)
    xml = render(message)
    header = SyslogHeader(hostname="h" * 255, app_name="a" * 48, procid="p" * 128)
    assert len(format_message(xml, header=header, timestamp=AT)) <= UDP_MAX_PAYLOAD
    [(_, details)] = studies(parsed(message))[:1]
    assert len(details["mado-gateway:registryErrorCode"]) == retrieves.MAX_ERROR_CODE


# -- the journal record and the service ------------------------------------------------------


def test_every_message_survives_the_journal_record() -> None:
    docs = [document(1), document(2, error="XDSRepositoryError")]
    exchange = soap("RAD-69", docs, patients={docs[0].document_uid: "P"})
    for event, message in messages_for(exchange, IDENTITY):
        record = AuditRecord(
            event=event, recorded_at=AT, process_id=7, request_id="soap-1", message=message
        )
        decoded = decode(encode(record))
        assert decoded == record
        assert isinstance(decoded, AuditRecord)
        assert render(decoded.message) == render(message)


async def test_the_service_journals_both_events_with_their_labels(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    service = AuditService(settings_for(tmp_path), IDENTITY, registry=registry)
    assert (
        registry.get_sample_value(
            "mado_gateway_audit_journaled_total", {"event": "instances-accessed"}
        )
        == 0
    )
    await service.start()
    docs = [document(1)]
    service.observe(soap("RAD-75", docs, patients={docs[0].document_uid: "P"}))
    records = [decode(r.payload) for r in service.journal.read(0, max_bytes=1 << 20, max_records=9)]
    await service.stop()
    labels = [(r.event, r.request_id) for r in records if isinstance(r, AuditRecord)]
    assert labels == [
        ("application-activity", None),
        ("instances-accessed", "soap-1"),
        ("instances-transferred", "soap-1"),
    ]
    for event in ("instances-accessed", "instances-transferred"):
        value = registry.get_sample_value("mado_gateway_audit_journaled_total", {"event": event})
        assert value == 1
