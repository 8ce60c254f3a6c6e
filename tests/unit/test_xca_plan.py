"""Which upstream answers for which document of a RAD-69 / RAD-75 request (xcai-digest §2.9,
§2.10): groups by community and by repository, refusals that reach no upstream."""

from __future__ import annotations

import pytest

from gateway.protocols.xca.model import DocumentRequest, ErrorCode, RetrieveRequest
from gateway.protocols.xca.plan import Carrier, Role, plan
from routing.loader import parse_config
from routing.registry import Registry

OWN = "1.2.3.100"
REMOTE_SOAP = "1.2.3.200"
REMOTE_WADO = "1.2.3.300"
UNKNOWN = "1.2.3.999"
REPO_SOAP = "1.2.3.100.1"
REPO_WADO = "1.2.3.100.2"

REGISTRY = Registry(
    parse_config(
        {
            "self": {"home_community_id": OWN, "audit_source_id": "gw"},
            "address_policy": {"allow_loopback": True},
            "upstreams": {
                "rig-soap": {"protocol": "rad-75", "base_urls": ["http://127.0.0.1:9001/xcai"]},
                "rig-wado": {"protocol": "xc-wado", "base_urls": ["http://127.0.0.1:9002/"]},
                "ids-soap": {"protocol": "rad-69", "base_urls": ["http://127.0.0.1:9003/ids"]},
                "ids-wado": {"protocol": "wado-rs", "base_urls": ["http://127.0.0.1:9004/"]},
            },
            "communities": {REMOTE_SOAP: "rig-soap", REMOTE_WADO: "rig-wado"},
            "sources": {REPO_SOAP: "ids-soap", REPO_WADO: "ids-wado"},
        }
    )
)


def doc(n: int, hcid: str | None, repository: str = REPO_WADO) -> DocumentRequest:
    return DocumentRequest(
        study_uid="1.2.9",
        series_uid="1.2.9.1",
        document_uid=f"1.2.9.1.{n}",
        repository_id=repository,
        home_community_id=hcid,
    )


@pytest.mark.xcai(21, 22, 23)
@pytest.mark.checklist(36, 37, 38)
def test_an_initiating_gateway_groups_by_community_and_refuses_without_asking() -> None:
    documents = (
        doc(1, f"urn:oid:{REMOTE_SOAP}"),
        doc(2, None),
        doc(3, f"urn:oid:{UNKNOWN}"),
        doc(4, f"urn:oid:{REMOTE_WADO}"),
        doc(5, f"urn:oid:{REMOTE_SOAP}"),
        doc(6, "not an oid"),
        doc(7, f"urn:oid:{OWN}", REPO_SOAP),
        doc(8, OWN, "9.9.9"),
    )
    result = plan(
        RetrieveRequest(documents=documents, transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        REGISTRY,
        Role.INITIATING,
    )
    groups = {g.upstream.name: g for g in result.groups}
    assert list(groups) == ["rig-soap", "rig-wado", "ids-soap"]
    assert groups["rig-soap"].documents == (documents[0], documents[4])
    assert groups["rig-soap"].carrier is Carrier.RAD_75
    assert groups["rig-wado"].carrier is Carrier.XC_WADO
    assert groups["ids-soap"].carrier is Carrier.RAD_69
    assert str(groups["ids-soap"].home_community_id) == OWN
    codes = {r.document.document_uid[-1]: r.error.code for r in result.refused}
    assert codes == {
        "2": ErrorCode.MISSING_HOME_COMMUNITY,
        "3": ErrorCode.UNKNOWN_COMMUNITY,
        "6": ErrorCode.UNKNOWN_COMMUNITY,
        "8": ErrorCode.UNKNOWN_REPOSITORY,
    }
    assert {r.error.location for r in result.refused} == {f"urn:oid:{OWN}"}


@pytest.mark.xcai(17, 19)
@pytest.mark.checklist(40)
def test_a_responding_gateway_groups_by_repository_and_only_for_its_community() -> None:
    documents = (
        doc(1, f"urn:oid:{OWN}", REPO_WADO),
        doc(2, None, REPO_SOAP),
        doc(3, f"urn:oid:{REMOTE_SOAP}", REPO_WADO),
        doc(4, OWN, f"urn:oid:{REPO_WADO}"),
        doc(5, OWN, "1.2.3.100.77"),
    )
    result = plan(
        RetrieveRequest(documents=documents, transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        REGISTRY,
        Role.RESPONDING,
    )
    assert [(g.upstream.name, g.carrier) for g in result.groups] == [
        ("ids-wado", Carrier.WADO_RS),
        ("ids-soap", Carrier.RAD_69),
    ]
    assert result.groups[0].documents == (documents[0], documents[3])
    codes = {r.document.document_uid[-1]: r.error.code for r in result.refused}
    assert codes == {"3": ErrorCode.UNKNOWN_COMMUNITY, "5": ErrorCode.UNKNOWN_REPOSITORY}
    assert all(r.document.document_uid in r.error.context for r in result.refused)


def test_carriers_name_their_outbound_transaction() -> None:
    assert [c.transaction for c in Carrier] == ["RAD-75", "RAD-69", "RAD-107", "RAD-160"]
