"""Audit of a RAD-160 the gateway bridged to RAD-75 or RAD-69 (gateway.audit.retrieves
.messages_for): the RAD-160 leg in and the SOAP leg out, each its own message. Every message
is validated against both schemas (tests.unit.audit.test_audit_retrieves.parsed)."""

from __future__ import annotations

import pytest

from gateway.audit.retrieves import messages_for
from gateway.exchange import DocumentOutcome, Exchange, StreamEnd
from gateway.exchange import Outcome as ExchangeOutcome
from tests.unit.audit.test_audit_retrieves import (
    AT,
    IDENTITY,
    by_role,
    event_id,
    outcome,
    parsed,
    patient_of,
    seen,
    studies,
    types,
)

STUDY = "1.2.3.7.1"
COMMUNITY = "urn:oid:1.2.3.9.9"
RLUID = "1.2.3.9.9.200"


def bridged(
    route_kind: str,
    leg_transaction: str,
    *,
    failed: tuple[int, ...] = (),
    status: int = 200,
) -> Exchange:
    """A finished RAD-160 for three instances of one series, bridged over one SOAP leg."""
    exchange = Exchange(
        request_id="bridge-1",
        method="GET",
        path=f"/wado/homeCommunityId/{COMMUNITY}/RetrieveLocationUID/{RLUID}/studies/{STUDY}",
        client="192.0.2.77",
        started_wall=AT.timestamp(),
        route_kind=route_kind,
        status=status,
        outcome=ExchangeOutcome.COMPLETE,
        duration_s=2.0,
    )
    exchange.study_uid = STUDY
    exchange.home_community_id = "1.2.3.9.9"
    leg = exchange.open_leg("community-c")
    leg.transaction = leg_transaction
    leg.url = "https://rig.c.example.org/xcai"
    leg.status = 200
    leg.end = StreamEnd.COMPLETE
    leg.end_s = 1.5
    for n in (1, 2, 3):
        document = DocumentOutcome(
            study_uid=STUDY,
            series_uid=f"{STUDY}.1",
            document_uid=f"{STUDY}.1.{n}",
            repository_id=RLUID,
            home_community_id=COMMUNITY,
            error_code="XDSDocumentUniqueIdError" if n in failed else None,
            upstream="community-c",
        )
        exchange.documents.append(document)
        if n not in failed:
            exchange.note_instance(seen(document, "PAT-7"))
    return exchange


@pytest.mark.parametrize(
    ("route_kind", "transaction"), [("relay", "RAD-75"), ("source", "RAD-69")]
)
def test_the_rad160_and_the_soap_leg_are_each_their_own_message(
    route_kind: str, transaction: str
) -> None:
    built = list(messages_for(bridged(route_kind, transaction), IDENTITY))
    assert [label for label, _ in built] == ["instances-accessed", "instances-transferred"]
    accessed, transferred = (parsed(message) for _, message in built)
    assert (event_id(accessed), types(accessed)) == ("110103", [transaction])
    # the RAD-160 answer names RAD-160 alone: no RAD-107 was made, the SOAP leg has its own
    assert (event_id(transferred), types(transferred)) == ("110104", ["RAD-160"])
    # the images came from the SOAP upstream to this gateway, then from it to the consumer
    source = by_role(accessed)["110153"]
    assert source.get("UserID") == "https://rig.c.example.org/xcai"
    assert by_role(accessed)["110152"].get("UserID") == IDENTITY.audit_source_id
    assert by_role(transferred)["110152"].get("UserID") == "192.0.2.77"
    for root in (accessed, transferred):
        assert patient_of(root).startswith("PAT-7")
    details = [d for _, d in studies(accessed)]
    assert [d["ihe:DocumentUniqueId"] for d in details] == [f"{STUDY}.1.{n}" for n in (1, 2, 3)]
    assert {d["Repository Unique Id"] for d in details} == {RLUID}


def test_a_partial_answer_splits_the_soap_legs_message_by_outcome() -> None:
    built = list(messages_for(bridged("relay", "RAD-75", failed=(2,), status=206), IDENTITY))
    roots = [parsed(message) for _, message in built]
    accessed = [root for root in roots if event_id(root) == "110103"]
    assert [outcome(root) for root in accessed] == [0, 4]
    failed = studies(accessed[1])
    assert [d["mado-gateway:registryErrorCode"] for _, d in failed] == [
        "XDSDocumentUniqueIdError"
    ]
    (transferred,) = (root for root in roots if event_id(root) == "110104")
    assert outcome(transferred) == 4  # a 206 is a minor failure of the RAD-160 answer


def test_a_rad160_relayed_over_dicomweb_has_one_message_per_leg() -> None:
    exchange = bridged("relay", "RAD-160")
    exchange.documents.clear()
    built = list(messages_for(exchange, IDENTITY))
    # the RAD-160 leg asked of the responding gateway, then the one answered
    assert [label for label, _ in built] == ["instances-accessed", "instances-transferred"]
