"""RAD-69 / RAD-75 request envelopes (gateway.protocols.xca.envelope): what build_request
writes is schema-valid and reads back; parse_request takes both DocumentRequest namespaces,
answers broken envelopes with the right SOAP fault and broken requests with InvalidRequest."""

from __future__ import annotations

import pytest

from gateway.protocols.xca.envelope import (
    ANONYMOUS,
    build_request,
    new_message_id,
    parse_request,
)
from gateway.protocols.xca.errors import (
    ActionNotSupported,
    AddressingHeaderRequired,
    AsyncNotSupported,
    InvalidAddressingHeader,
    InvalidRequest,
    MalformedMessage,
    SoapFault,
    VersionMismatch,
)
from gateway.protocols.xca.model import (
    Action,
    Addressing,
    ErrorCode,
    Namespace,
    RetrieveRequest,
)
from tests.unit.xca.xcadata import (
    NS,
    assert_valid,
    body_element,
    document,
    document_xml,
    rad69,
    request_body,
    request_schema,
    sample_request,
    soap_request,
)

MAX = 1 << 20


def test_built_request_is_schema_valid_and_reads_back() -> None:
    request = sample_request()
    xml = build_request(rad69(), request)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert_valid(request_schema(), body_element(xml))
    addressing, parsed = parse_request(xml, max_bytes=MAX)
    assert parsed == request
    assert addressing.action == Action.RAD_69
    assert addressing.to == "https://iig.b.example.net/xcai/iig/rad69"
    assert addressing.reply_to == ANONYMOUS
    assert addressing.message_id is not None and addressing.message_id.startswith("urn:uuid:")


def test_request_headers_follow_ws_addressing() -> None:
    """Digest §2.2 / item 26: Action (mustUnderstand), MessageID, ReplyTo anonymous, To."""
    from lxml import etree

    xml = build_request(
        Addressing(action=Action.RAD_75.value, message_id="urn:uuid:1", to="https://rig/x"),
        sample_request(),
    )
    header = etree.fromstring(xml).find("env:Header", NS)
    assert header is not None
    must = f"{{{Namespace.SOAP.value}}}mustUnderstand"
    action = header.find("wsa:Action", NS)
    assert action is not None and action.text == Action.RAD_75.value
    assert action.get(must) == "true"
    assert header.findtext("wsa:MessageID", namespaces=NS) == "urn:uuid:1"
    assert header.findtext("wsa:ReplyTo/wsa:Address", namespaces=NS) == ANONYMOUS
    assert header.findtext("wsa:To", namespaces=NS) == "https://rig/x"
    assert new_message_id() != new_message_id()


def test_documents_are_regrouped_by_study_and_series_in_first_seen_order() -> None:
    documents = (
        document("1.1.1.1", study="1.1", series="1.1.1"),
        document("2.1.1.1", study="2.1", series="2.1.1", community=None),
        document("1.1.2.1", study="1.1", series="1.1.2"),
        document("1.1.1.2", study="1.1", series="1.1.1"),
    )
    request = RetrieveRequest(documents=documents, transfer_syntaxes=("1.2.840.10008.1.2.1",))
    xml = build_request(rad69(), request)
    assert_valid(request_schema(), body_element(xml))
    _, parsed = parse_request(xml, max_bytes=MAX)
    assert [d.document_uid for d in parsed.documents] == [
        "1.1.1.1",
        "1.1.1.2",
        "1.1.2.1",
        "2.1.1.1",
    ]
    assert set(parsed.documents) == set(documents)
    body = body_element(xml)
    studies = body.findall("iherad:StudyRequest", NS)
    assert [s.get("studyInstanceUID") for s in studies] == ["1.1", "2.1"]
    assert [s.get("seriesInstanceUID") for s in studies[0]] == ["1.1.1", "1.1.2"]


@pytest.mark.xcai(29)
@pytest.mark.checklist(34)
def test_document_namespace_is_chosen_per_upstream() -> None:
    request = sample_request()
    default = body_element(build_request(rad69(), request))
    assert len(default.findall(".//xdsb:DocumentRequest", NS)) == 2
    assert default.findall(".//iherad:DocumentRequest", NS) == []
    ipf = build_request(rad69(), request, document_namespace=Namespace.IHERAD)
    body = body_element(ipf)
    assert body.findall(".//xdsb:DocumentRequest", NS) == []
    entries = body.findall(".//iherad:DocumentRequest", NS)
    assert len(entries) == 2
    assert entries[0].findtext("xdsb:DocumentUniqueId", namespaces=NS) == "1.2.3.4.5.1.1.1"
    assert parse_request(ipf, max_bytes=MAX)[1] == request
    # Why it is a setting: the IHE/NIST schema wants xds-b here, IPF's wants xdsi-b.
    assert not request_schema().validate(body)


@pytest.mark.xcai(4)
@pytest.mark.checklist(34)
@pytest.mark.parametrize("prefixes", [("xdsb", "xdsb"), ("iherad", "iherad"), ("xdsb", "iherad")])
def test_document_request_is_read_in_both_namespaces(prefixes: tuple[str, str]) -> None:
    documents = document_xml(" 1.2.3.4.5.1.1.1\n", prefixes[0]) + document_xml(
        "1.2.3.4.5.1.1.2", prefixes[1]
    )
    _, request = parse_request(soap_request(request_body(documents)), max_bytes=MAX)
    assert request == RetrieveRequest(
        documents=sample_request().documents, transfer_syntaxes=("1.2.840.10008.1.2.1",)
    )


def test_children_of_an_iherad_document_request_may_be_iherad_too() -> None:
    documents = (
        "<iherad:DocumentRequest>"
        "<iherad:RepositoryUniqueId>5.6</iherad:RepositoryUniqueId>"
        "<iherad:DocumentUniqueId>1.2</iherad:DocumentUniqueId>"
        "</iherad:DocumentRequest>"
    )
    _, request = parse_request(soap_request(request_body(documents)), max_bytes=MAX)
    assert [(d.repository_id, d.document_uid, d.home_community_id) for d in request.documents] == [
        ("5.6", "1.2", None)
    ]


LONG = "1." + "2" * 255
SYNTAX = "<iherad:TransferSyntaxUID>1.2.840.10008.1.2.1</iherad:TransferSyntaxUID>"


def ts_list(inner: str) -> str:
    return f"<iherad:TransferSyntaxUIDList>{inner}</iherad:TransferSyntaxUIDList>"


@pytest.mark.xcai(5)
@pytest.mark.parametrize(
    "body",
    [
        pytest.param(request_body(document_xml("1.2"), syntaxes=""), id="no-transfer-syntax-list"),
        pytest.param(request_body(document_xml("1.2"), ts_list("")), id="empty-list"),
        pytest.param(
            request_body(
                document_xml("1.2"),
                ts_list("<iherad:TransferSyntaxUID> </iherad:TransferSyntaxUID>"),
            ),
            id="empty-transfer-syntax",
        ),
        pytest.param(
            request_body(document_xml("1.2"), ts_list(SYNTAX) + ts_list(SYNTAX)), id="two-lists"
        ),
        pytest.param(request_body(""), id="no-document-request"),
        pytest.param(request_body(document_xml("")), id="empty-document-uid"),
        pytest.param(request_body(document_xml("  ")), id="blank-document-uid"),
        pytest.param(request_body(document_xml("1.2", repository="")), id="empty-repository"),
        pytest.param(request_body(document_xml(LONG)), id="id-over-256"),
        pytest.param(
            request_body(
                "<xdsb:DocumentRequest><xdsb:DocumentUniqueId>1</xdsb:DocumentUniqueId>"
                "</xdsb:DocumentRequest>"
            ),
            id="no-repository",
        ),
        pytest.param(
            request_body(
                "<xdsb:DocumentRequest><xdsb:RepositoryUniqueId>1</xdsb:RepositoryUniqueId>"
                "<xdsb:DocumentUniqueId>1</xdsb:DocumentUniqueId>"
                "<xdsb:DocumentUniqueId>2</xdsb:DocumentUniqueId></xdsb:DocumentRequest>"
            ),
            id="document-uid-twice",
        ),
        pytest.param(
            request_body(document_xml("1.2")).replace('studyInstanceUID="1.2.3.4.5.1"', ""),
            id="no-study-uid",
        ),
        pytest.param(
            request_body(document_xml("1.2")).replace(
                'seriesInstanceUID="1.2.3.4.5.1.1"', 'seriesInstanceUID=" "'
            ),
            id="empty-series-uid",
        ),
        pytest.param(
            f'<iherad:RetrieveImagingDocumentSetRequest xmlns:iherad="{Namespace.IHERAD.value}">'
            f"{ts_list(SYNTAX)}</iherad:RetrieveImagingDocumentSetRequest>",
            id="no-study-request",
        ),
        pytest.param(
            request_body(document_xml("1.2")).replace(
                "</iherad:SeriesRequest></iherad:StudyRequest>",
                "</iherad:SeriesRequest></iherad:StudyRequest>"
                '<iherad:StudyRequest studyInstanceUID="9"></iherad:StudyRequest>',
            ),
            id="study-without-series",
        ),
    ],
)
def test_content_rules_give_a_failure_not_a_fault(body: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(soap_request(body), max_bytes=MAX)
    error = caught.value.registry_error
    assert error.code == ErrorCode.REGISTRY
    assert error.context and LONG not in error.context


def test_an_id_of_exactly_256_characters_is_accepted() -> None:
    uid = LONG[:256]
    _, request = parse_request(soap_request(request_body(document_xml(uid))), max_bytes=MAX)
    assert request.documents[0].document_uid == uid


HEADERS_OK = (
    f'<a:Action s:mustUnderstand="1">{Action.RAD_75.value}</a:Action>'
    "<a:MessageID>urn:uuid:1</a:MessageID>"
)


@pytest.mark.parametrize(
    ("xml", "fault", "detail"),
    [
        pytest.param(b"not xml", MalformedMessage, None, id="not-xml"),
        pytest.param(b"<a><b></a>", MalformedMessage, None, id="not-well-formed"),
        pytest.param(b"<Envelope/>", VersionMismatch, None, id="no-namespace"),
        pytest.param(
            soap_request(
                request_body(document_xml("1")),
                envelope_ns="http://schemas.xmlsoap.org/soap/envelope/",
            ),
            VersionMismatch,
            None,
            id="soap-1.1",
        ),
        pytest.param(
            f'<s:Envelope xmlns:s="{Namespace.SOAP.value}"><s:Header/></s:Envelope>'.encode(),
            MalformedMessage,
            None,
            id="no-body",
        ),
        pytest.param(
            soap_request("<x:Other xmlns:x='urn:x'/>", headers=HEADERS_OK),
            MalformedMessage,
            None,
            id="wrong-body-element",
        ),
        pytest.param(
            soap_request(request_body(document_xml("1")) * 2, headers=HEADERS_OK),
            MalformedMessage,
            None,
            id="two-body-elements",
        ),
        pytest.param(
            soap_request(request_body(document_xml("1")), headers=""),
            AddressingHeaderRequired,
            "wsa:Action",
            id="no-action",
        ),
        pytest.param(
            soap_request(
                request_body(document_xml("1")),
                headers=f"<a:Action>{Action.RAD_69.value}</a:Action>",
            ),
            AddressingHeaderRequired,
            "wsa:MessageID",
            id="no-message-id",
        ),
        pytest.param(
            soap_request(
                request_body(document_xml("1")),
                headers="<a:Action>urn:ihe:iti:2007:RetrieveDocumentSet</a:Action>",
            ),
            ActionNotSupported,
            "urn:ihe:iti:2007:RetrieveDocumentSet",
            id="unknown-action",
        ),
        pytest.param(
            soap_request(
                request_body(document_xml("1")),
                headers=HEADERS_OK + f"<a:Action>{Action.RAD_75.value}</a:Action>",
            ),
            InvalidAddressingHeader,
            "wsa:Action",
            id="action-twice",
        ),
        pytest.param(
            soap_request(
                request_body(document_xml("1")),
                headers=HEADERS_OK + "<a:ReplyTo><a:Address>https://c/back</a:Address></a:ReplyTo>",
            ),
            AsyncNotSupported,
            "wsa:ReplyTo",
            id="reply-to-elsewhere",
        ),
        pytest.param(
            soap_request(
                request_body(document_xml("1")),
                headers=HEADERS_OK + "<a:FaultTo><a:Address>https://c/f</a:Address></a:FaultTo>",
            ),
            AsyncNotSupported,
            "wsa:FaultTo",
            id="fault-to-elsewhere",
        ),
    ],
)
def test_broken_envelopes_are_faults(
    xml: bytes, fault: type[SoapFault], detail: str | None
) -> None:
    with pytest.raises(SoapFault) as caught:
        parse_request(xml, max_bytes=MAX)
    assert type(caught.value) is fault
    assert caught.value.detail == detail


def test_only_the_endpoint_actions_are_supported() -> None:
    xml = soap_request(request_body(document_xml("1")), headers=HEADERS_OK)
    assert parse_request(xml, max_bytes=MAX)[0].action == Action.RAD_75
    with pytest.raises(ActionNotSupported) as caught:
        parse_request(xml, max_bytes=MAX, actions=(Action.RAD_69.value,))
    assert caught.value.detail == Action.RAD_75.value


def test_reply_to_anonymous_and_absent_are_served() -> None:
    absent = soap_request(request_body(document_xml("1")), headers=HEADERS_OK)
    assert parse_request(absent, max_bytes=MAX)[0].reply_to is None
    anonymous = soap_request(
        request_body(document_xml("1")),
        headers=HEADERS_OK + f"<a:ReplyTo><a:Address> {ANONYMOUS} </a:Address></a:ReplyTo>",
    )
    assert parse_request(anonymous, max_bytes=MAX)[0].reply_to == ANONYMOUS


def test_comments_and_processing_instructions_do_not_split_ids() -> None:
    documents = document_xml("1.2<!-- note -->.3").replace(
        "<xdsb:RepositoryUniqueId>", "<xdsb:RepositoryUniqueId><?pi x?>"
    )
    _, request = parse_request(soap_request(request_body(documents)), max_bytes=MAX)
    assert request.documents[0].document_uid == "1.2.3"
    assert request.documents[0].repository_id == "5.6.7.8.100"
