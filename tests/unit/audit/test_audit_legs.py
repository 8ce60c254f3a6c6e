"""One message per transaction leg (issue 12): Begin Transferring before the first byte, the
outbound DICOMweb legs' Instances Accessed, the request object every exchange message
carries, and upstreams named without identifiers (gateway.audit.transfers, .objects,
.participants). Every message is validated against the XSD and both PS3.15 A.5.1 editions.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.audit import messages
from gateway.audit.messages import AlertKind
from gateway.audit.model import AuditMessage, Outcome
from gateway.audit.participants import endpoint_of
from gateway.audit.render import render
from gateway.audit.retrieves import messages_for
from gateway.audit.transfers import MAX_STUDIES, begin_transferring, instances_accessed
from gateway.exchange import DocumentOutcome, Exchange, InstanceSeen, StreamEnd
from gateway.exchange import Outcome as ExchangeOutcome
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import request_id_of, roles_of, validate

IDENTITY = Identity(
    home_community_id=HomeCommunityId("5.6.7.8"),
    audit_source_id="rig.a.example.org",
    enterprise_site_id="CommunityA",
)
AT = datetime(2026, 3, 16, 10, 15, 30, tzinfo=UTC)
CT = "1.2.840.10008.5.1.4.1.1.2"
HOST = "gw1.a.example.org"
STUDY = "1.2.3.4.5.1"


def retrieval(route: str = "source", *, legs: int = 1, **fields: object) -> Exchange:
    """A finished RAD-160 retrieval of STUDY, its legs each answered 200 in whole."""
    exchange = Exchange(
        request_id="req-1",
        method="GET",
        path=f"/wado/homeCommunityId/5.6.7.8/RetrieveLocationUID/5.6.7.8.200/studies/{STUDY}",
        client="192.0.2.77",
        started_wall=AT.timestamp(),
        route_kind=route,
        study_uid=STUDY,
        home_community_id="5.6.7.8",
        status=200,
        outcome=ExchangeOutcome.COMPLETE,
        duration_s=1.5,
        **fields,  # type: ignore[arg-type]
    )
    for n in range(legs):
        leg = exchange.open_leg(f"up-{n}")
        leg.url = f"https://user:secret@ids{n}.example.org:8443/pacs/WADO-rs/studies/{STUDY}?x=1"
        leg.status = 200
        leg.end = StreamEnd.COMPLETE
        leg.first_byte_s = 0.2
        leg.end_s = 1.0
    exchange.note_instance(
        InstanceSeen(
            sop_class_uid=CT,
            sop_instance_uid=f"{STUDY}.1.1",
            study_uid=STUDY,
            series_uid=f"{STUDY}.1",
            patient_id="PAT-1",
            patient_id_issuer="1.2.3.4.9",
            patient_name="DOE^JANE",
        )
    )
    return exchange


def parsed(message: AuditMessage) -> etree._Element:
    root = validate(render(message))
    assert set(roles_of(root)) == {"110152", "110153"}  # one Source, one Destination
    return root


def event_of(root: etree._Element) -> tuple[str, str, list[str]]:
    event = root.find("EventIdentification")
    types = [code.get("csd-code") for code in event.iter("EventTypeCode")]
    return str(event.find("EventID").get("csd-code")), str(event.get("EventActionCode")), types


# -- Begin Transferring ------------------------------------------------------------------


def test_begin_transferring_of_a_rad160_retrieval() -> None:
    exchange = retrieval()
    (message,) = begin_transferring(exchange, exchange.legs[0], IDENTITY, host=HOST)
    root = parsed(message)
    assert event_of(root) == ("110102", "E", ["RAD-160"])
    assert root.find("EventIdentification").get("EventOutcomeIndicator") == "0"
    assert message.event.at == datetime.fromtimestamp(AT.timestamp() + 0.2, UTC)
    source, destination = roles_of(root)["110153"], roles_of(root)["110152"]
    assert (source.get("UserID"), source.get("NetworkAccessPointID")) == (
        "rig.a.example.org",
        HOST,
    )
    assert (destination.get("UserID"), destination.get("UserIsRequestor")) == (
        "192.0.2.77",
        "true",
    )
    ids = [o.get("ParticipantObjectID") for o in root.iter("ParticipantObjectIdentification")]
    assert ids == [STUDY, messages.UNKNOWN_PATIENT_ID, "req-1"]  # no header read yet


def test_begin_transferring_of_a_soap_answer_names_the_studies_asked_split_past_the_cap() -> None:
    exchange = retrieval(transaction="RAD-75")
    exchange.documents.extend(
        DocumentOutcome(
            study_uid=f"1.2.3.{n}",
            series_uid=f"1.2.3.{n}.1",
            document_uid=f"1.2.3.{n}.1.1",
            repository_id="1.2.3.100",
            home_community_id="urn:oid:5.6.7.8",
        )
        for n in range(MAX_STUDIES + 5)
    )
    built = begin_transferring(exchange, exchange.legs[0], IDENTITY, host=HOST)
    roots = [parsed(message) for message in built]
    assert [event_of(root) for root in roots] == [("110102", "E", ["RAD-75"])] * 2
    studies = [
        [o.get("ParticipantObjectID") for o in root.iter("ParticipantObjectIdentification")][:-2]
        for root in roots
    ]
    assert studies == [
        [f"1.2.3.{n}" for n in range(MAX_STUDIES)],
        [f"1.2.3.{n}" for n in range(MAX_STUDIES, MAX_STUDIES + 5)],
    ]


def test_no_begin_transferring_for_a_request_that_is_no_retrieve_transaction() -> None:
    exchange = retrieval(transaction="none")
    assert begin_transferring(exchange, exchange.legs[0], IDENTITY) == []


# -- the outbound DICOMweb legs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "transaction"),
    [("relay", "RAD-160"), ("source", "RAD-107"), ("retrieve-url", "RAD-107")],
)
def test_the_outbound_leg_is_accessed_from_the_upstream_by_the_gateway(
    route: str, transaction: str
) -> None:
    (message,) = instances_accessed(retrieval(route), IDENTITY, host=HOST)
    root = parsed(message)
    assert event_of(root) == ("110103", "R", [transaction])
    source, destination = roles_of(root)["110153"], roles_of(root)["110152"]
    # the endpoint: no credentials, no study, no query; the case of the path kept
    assert source.get("UserID") == "https://ids0.example.org:8443/pacs/WADO-rs/"
    assert source.get("AlternativeUserID") == "up-0"
    assert source.get("NetworkAccessPointID") == "ids0.example.org"
    assert source.get("UserIsRequestor") == "false"
    assert destination.get("UserID") == "rig.a.example.org"
    assert destination.get("NetworkAccessPointID") == HOST
    assert destination.get("UserIsRequestor") == "true"
    patient = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']")
    assert patient.get("ParticipantObjectID") == "PAT-1^^^&1.2.3.4.9&ISO"
    assert patient.findtext("ParticipantObjectName") == "DOE^JANE"
    assert request_id_of(root) == "req-1"


@pytest.mark.parametrize(
    ("status", "end", "expected"),
    [
        (200, StreamEnd.COMPLETE, Outcome.SUCCESS),
        (206, StreamEnd.COMPLETE, Outcome.MINOR_FAILURE),
        (404, None, Outcome.MINOR_FAILURE),
        (200, StreamEnd.TRUNCATED, Outcome.SERIOUS_FAILURE),
        (200, StreamEnd.STALLED, Outcome.SERIOUS_FAILURE),
        (200, StreamEnd.CLIENT, Outcome.SERIOUS_FAILURE),
        (502, None, Outcome.MAJOR_FAILURE),
        (None, None, Outcome.MAJOR_FAILURE),
    ],
)
def test_the_legs_answer_decides_its_outcome(
    status: int | None, end: StreamEnd | None, expected: Outcome
) -> None:
    exchange = retrieval()
    exchange.legs[0].status = status
    exchange.legs[0].end = end
    (message,) = instances_accessed(exchange, IDENTITY)
    assert message.event.outcome is expected


def test_a_leg_that_sent_no_request_has_no_message() -> None:
    exchange = retrieval()
    exchange.legs[0].url = None
    assert instances_accessed(exchange, IDENTITY) == []
    assert [label for label, _ in messages_for(exchange, IDENTITY)] == []  # not contacted


def test_legs_to_one_upstream_are_one_conversation_and_its_last_leg_speaks() -> None:
    exchange = retrieval(legs=1)
    failed = exchange.open_leg("up-0")  # a failover to the same upstream, after the first
    failed.url = f"https://ids9.example.org/wado/studies/{STUDY}"
    failed.status = 503
    (message,) = instances_accessed(exchange, IDENTITY)
    assert message.event.outcome is Outcome.MAJOR_FAILURE
    assert message.participants[0].user_id == "https://ids9.example.org/wado/"


def test_several_conversations_each_report_the_studies_they_asked_for() -> None:
    exchange = retrieval(route="manifest", legs=2)
    exchange.legs[1].url = "https://ids1.example.org/wado/studies/9.9.9"
    exchange.note_instance(
        InstanceSeen(
            sop_class_uid=CT,
            sop_instance_uid="9.9.9.1.1",
            study_uid="9.9.9",
            series_uid="9.9.9.1",
            patient_id="PAT-2",
            patient_id_issuer=None,
            patient_name=None,
        )
    )
    built = instances_accessed(exchange, IDENTITY)
    said = sorted(
        (m.participants[0].alternative_user_id, o.object_id)
        for m in built
        for o in m.objects
        if o.role is not None and int(o.role) == 3
    )
    assert said == [("up-0", STUDY), ("up-1", "9.9.9")]


# -- the request object ----------------------------------------------------------------------


def test_every_message_of_an_exchange_names_its_request() -> None:
    exchange = retrieval()
    built = [message for _, message in messages_for(exchange, IDENTITY, host=HOST)]
    built += begin_transferring(exchange, exchange.legs[0], IDENTITY, host=HOST)
    assert len(built) == 3
    for message in built:
        root = parsed(message)
        request = root.findall("ParticipantObjectIdentification")[-1]
        assert request.get("ParticipantObjectID") == "req-1"
        assert request.get("ParticipantObjectTypeCode") == "2"
        assert request.get("ParticipantObjectTypeCodeRole") is None
        code = request.find("ParticipantObjectIDTypeCode")
        assert (code.get("csd-code"), code.get("codeSystemName")) == (
            "XrequestId",
            "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType",
        )
        assert request.findtext("ParticipantObjectName") == "req-1"
        assert request.find("ParticipantObjectDetail") is None


def test_a_request_id_the_client_chose_comes_with_the_gateways_own() -> None:
    one, two = retrieval(exchange_id="own-1"), retrieval(exchange_id="own-2")
    for exchange in (one, two):
        exchange.request_id = "client-chose-this"
    first = render(list(messages_for(one, IDENTITY))[-1][1])
    second = render(list(messages_for(two, IDENTITY))[-1][1])
    assert first != second  # the same time, the same everything, but two exchanges
    request = validate(first).findall("ParticipantObjectIdentification")[-1]
    detail = request.find("ParticipantObjectDetail")
    assert detail.get("type") == "mado-gateway:exchangeId"
    assert base64.b64decode(detail.get("value")) == b"own-1"


def test_a_security_alert_raised_while_serving_names_the_request() -> None:
    alert = messages.security_alert(
        IDENTITY,
        kind=AlertKind.REFUSED_URL,
        target="https://evil.example.net/",
        description="not allowed",
        at=AT,
        reporter="gw",
        request_id="req-9",
    )
    root = validate(render(alert))
    assert request_id_of(root) == "req-9"
    without = messages.security_alert(
        IDENTITY,
        kind=AlertKind.CONFIG_REJECTED,
        target="file:///etc/gw.yaml",
        description="rejected",
        at=AT,
        reporter="gw",
    )
    assert request_id_of(validate(render(without))) is None


# -- endpoints ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        (
            "https://ids.example.org/pacs/wado-rs/studies/1.2.3/series/4?x=1",
            "https://ids.example.org/pacs/wado-rs/",
        ),
        (
            "http://rig.example.org:8080/xcwado/homeCommunityId/1.2/RetrieveLocationUID/3.4/studies/5",
            "http://rig.example.org:8080/xcwado/",
        ),
        ("https://ids.example.org/STUDY/1.2.3", "https://ids.example.org/"),
        ("https://u:p@[2001:db8::1]:443/xdsi/rad69", "https://[2001:db8::1]:443/xdsi/rad69"),
        ("https://ids.example.org/wado#frag", "https://ids.example.org/wado"),
    ],
)
def test_an_endpoint_has_no_identifiers(url: str, endpoint: str) -> None:
    assert endpoint_of(url) == endpoint


@settings(max_examples=200, deadline=None)
@given(
    base=st.lists(st.sampled_from(["wado", "pacs", "rs", "x"]), max_size=3),
    tail=st.lists(st.text(alphabet="0123456789.", min_size=1, max_size=8), max_size=4),
    marker=st.sampled_from(["studies", "Studies", "homeCommunityId", "study"]),
    query=st.text(alphabet="abc=&%2F", max_size=10),
)
def test_no_identifier_survives_in_an_endpoint(
    base: list[str], tail: list[str], marker: str, query: str
) -> None:
    path = "/".join(["", *base, marker, *tail])
    endpoint = endpoint_of(f"https://user:pw@h.example.org{path}?{query}")
    assert endpoint == "https://h.example.org" + "/".join(["", *base]) + "/"
    assert "user" not in endpoint and "?" not in endpoint
