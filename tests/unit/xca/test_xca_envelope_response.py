"""RetrieveDocumentSetResponse envelopes and SOAP faults (gateway.protocols.xca.envelope):
build_response/build_failure are schema-valid and read back, parse_response reads peers'
xop:Include and inline base64 forms and refuses unreadable answers, build_fault writes the
SOAP 1.2 / WS-Addressing fault shape."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from gateway.protocols.xca.envelope import (
    FAULT_ACTION,
    build_failure,
    build_fault,
    build_response,
    parse_response,
)
from gateway.protocols.xca.errors import (
    ActionNotSupported,
    AddressingHeaderRequired,
    AnswerUnreadable,
    AsyncNotSupported,
    EnvelopeTooLarge,
    InvalidRequest,
    MalformedMessage,
    MtomError,
    PeerFault,
    SoapFault,
    VersionMismatch,
)
from gateway.protocols.xca.model import (
    Action,
    Addressing,
    DocumentResponse,
    ErrorCode,
    Namespace,
    RegistryError,
    RetrieveResponse,
    Severity,
    Status,
)
from gateway.protocols.xca.outcomes import missing_fields
from tests.unit.xca.xcadata import NS, assert_valid, body_element, response_schema

MAX = 1 << 20
ANSWER = Addressing(
    action=Action.RAD_75.response, relates_to="urn:uuid:0f1e2d3c-0000-4000-8000-000000000075"
)


def returned(uid: str, cid: str | None = None, inline: bytes | None = None) -> DocumentResponse:
    return DocumentResponse(
        home_community_id="urn:oid:5.6.7.8",
        repository_id="5.6.7.8.100",
        document_uid=uid,
        content_id=cid,
        inline=inline,
    )


PARTIAL = RetrieveResponse(
    status=Status.PARTIAL_SUCCESS,
    errors=(
        RegistryError(
            code=ErrorCode.DOCUMENT_UNIQUE_ID,
            context="SOP instance 1.2.3.4.5.1.1.2 not available",
            location="urn:oid:5.6.7.8",
        ),
        RegistryError(code="XDSMissingDocument", context="w", severity=Severity.WARNING),
    ),
    documents=(returned("1.2.3.4.5.1.1.1", cid="img1@a.example.org"), returned("1.2", cid="a b")),
)


def test_built_response_is_schema_valid_and_reads_back() -> None:
    xml = build_response(ANSWER, PARTIAL)
    assert_valid(response_schema(), body_element(xml))
    addressing, response = parse_response(xml, max_bytes=MAX)
    assert response == PARTIAL
    assert addressing.action == ANSWER.action
    assert addressing.relates_to == ANSWER.relates_to
    hrefs = [e.get("href") for e in body_element(xml).iterfind(".//xop:Include", NS)]
    assert hrefs == ["cid:img1@a.example.org", "cid:a%20b"]


def test_inline_documents_are_base64_and_read_back() -> None:
    data = b"\r\nDICM\x00\xff\r\n"
    response = RetrieveResponse(status=Status.SUCCESS, documents=(returned("1.2", inline=data),))
    xml = build_response(ANSWER, response)
    assert_valid(response_schema(), body_element(xml))
    assert parse_response(xml, max_bytes=MAX)[1] == response


def test_a_document_needs_a_part_or_bytes() -> None:
    with pytest.raises(ValueError, match="content_id or inline"):
        build_response(ANSWER, RetrieveResponse(status=Status.SUCCESS, documents=(returned("1"),)))


def test_failure_carries_one_error_and_no_document() -> None:
    error = InvalidRequest("The request has no StudyRequest.").registry_error
    xml = build_failure(ANSWER, error)
    assert_valid(response_schema(), body_element(xml))
    _, response = parse_response(xml, max_bytes=MAX)
    assert response == RetrieveResponse(status=Status.FAILURE, errors=(error,), documents=())


def peer_answer(body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{Namespace.SOAP.value}" xmlns:a="{Namespace.WSA.value}">'
        f"<s:Header><a:Action>{Action.RAD_69.response}</a:Action>"
        "<a:RelatesTo>urn:uuid:1</a:RelatesTo></s:Header>"
        f'<s:Body><xdsb:RetrieveDocumentSetResponse xmlns:xdsb="{Namespace.XDSB.value}" '
        f'xmlns:rs="{Namespace.RS.value}" xmlns:xop="{Namespace.XOP.value}">'
        f"{body}</xdsb:RetrieveDocumentSetResponse></s:Body></s:Envelope>"
    ).encode()


def registry(status: str = Status.SUCCESS.value, errors: str = "") -> str:
    return f'<rs:RegistryResponse status="{status}">{errors}</rs:RegistryResponse>'


def document_response(inner: str) -> str:
    return f"<xdsb:DocumentResponse>{inner}</xdsb:DocumentResponse>"


FIELDS = (
    "<xdsb:HomeCommunityId>urn:oid:1</xdsb:HomeCommunityId>"
    "<xdsb:RepositoryUniqueId> 1.2 </xdsb:RepositoryUniqueId>"
    "<xdsb:DocumentUniqueId>1.2.3</xdsb:DocumentUniqueId>"
    "<xdsb:mimeType>application/dicom</xdsb:mimeType>"
)


def test_peer_answers_in_both_document_forms() -> None:
    encoded = base64.encodebytes(b"\r\n\x00bytes\r\n").decode()
    xml = peer_answer(
        registry()
        + document_response(
            FIELDS + '<xdsb:Document><xop:Include href="cid:img1%40a.example.org"/></xdsb:Document>'
        )
        + document_response(FIELDS + f"<xdsb:Document>\n{encoded}</xdsb:Document>")
    )
    addressing, response = parse_response(xml, max_bytes=MAX)
    assert addressing.relates_to == "urn:uuid:1"
    first, second = response.documents
    assert (first.content_id, first.inline) == ("img1@a.example.org", None)
    assert (second.content_id, second.inline) == (None, b"\r\n\x00bytes\r\n")
    assert first.repository_id == "1.2"
    assert response.status is Status.SUCCESS


def test_missing_fields_are_kept_for_the_caller_to_judge() -> None:
    xml = peer_answer(
        registry() + document_response("<xdsb:DocumentUniqueId>1.2.3</xdsb:DocumentUniqueId>")
    )
    (document,) = parse_response(xml, max_bytes=MAX)[1].documents
    assert document.home_community_id is None
    assert (document.repository_id, document.mime_type) == ("", "")
    assert missing_fields(document) == ("homeCommunityId, repositoryUniqueId, mimeType, Document")


def test_relayed_errors_and_unknown_statuses_are_kept_as_written() -> None:
    errors = (
        '<rs:RegistryErrorList><rs:RegistryError errorCode="urn:dicom:wado:0007" '
        'codeContext="c" location="1.2.3.4"/>'
        '<rs:RegistryError errorCode="XDSX" codeContext="w" '
        'severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"/>'
        "</rs:RegistryErrorList>"
    )
    xml = peer_answer(registry("urn:example:Odd", errors))
    response = parse_response(xml, max_bytes=MAX)[1]
    assert response.status == "urn:example:Odd"
    assert response.errors == (
        RegistryError(code="urn:dicom:wado:0007", context="c", location="1.2.3.4"),
        RegistryError(code="XDSX", context="w", severity=Severity.WARNING),
    )


@pytest.mark.parametrize(
    "xml",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"<html>502 Bad Gateway</html>", id="not-soap"),
        pytest.param(peer_answer(""), id="no-registry-response"),
        pytest.param(peer_answer("<rs:RegistryResponse/>"), id="no-status"),
        pytest.param(
            peer_answer(
                registry() + document_response(FIELDS + "<xdsb:Document>*%$</xdsb:Document>")
            ),
            id="bad-inline-base64",
        ),
        pytest.param(
            peer_answer(
                registry()
                + document_response(
                    FIELDS + '<xdsb:Document><xop:Include href="http://x/y"/></xdsb:Document>'
                )
            ),
            id="href-not-cid",
        ),
        pytest.param(
            peer_answer(
                registry()
                + document_response(
                    FIELDS + '<xdsb:Document>QQ==<xop:Include href="cid:a"/></xdsb:Document>'
                )
            ),
            id="include-and-text",
        ),
        pytest.param(
            f'<s:Envelope xmlns:s="{Namespace.SOAP.value}"><s:Body><x xmlns="urn:x"/>'
            "</s:Body></s:Envelope>".encode(),
            id="wrong-body-element",
        ),
    ],
)
def test_unreadable_answers(xml: bytes) -> None:
    with pytest.raises(AnswerUnreadable) as caught:
        parse_response(xml, max_bytes=MAX)
    assert not isinstance(caught.value, PeerFault)


def test_a_peer_fault_is_reported_with_its_codes() -> None:
    xml = build_fault(ActionNotSupported(detail="urn:x"), relates_to="urn:uuid:9")
    with pytest.raises(PeerFault) as caught:
        parse_response(xml, max_bytes=MAX)
    assert (caught.value.code, caught.value.subcode) == ("env:Sender", "wsa:ActionNotSupported")


def fault_tree(fault: SoapFault, relates_to: str | None = None) -> etree._Element:
    return etree.fromstring(build_fault(fault, relates_to=relates_to))


def test_action_not_supported_fault_shape() -> None:
    """WS-Addressing 1.0 SOAP Binding §6.4.4; SOAP 1.2 Part 1 §5.4."""
    root = fault_tree(
        ActionNotSupported(detail="urn:ihe:iti:2007:RetrieveDocumentSet"), "urn:uuid:7"
    )
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == FAULT_ACTION
    assert root.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:7"
    fault = root.find("env:Body/env:Fault", NS)
    assert fault is not None
    value = fault.find("env:Code/env:Value", NS)
    assert value is not None and value.text == "env:Sender"
    assert value.nsmap["env"] == Namespace.SOAP.value
    subcode = fault.find("env:Code/env:Subcode/env:Value", NS)
    assert subcode is not None and subcode.text == "wsa:ActionNotSupported"
    assert subcode.nsmap["wsa"] == Namespace.WSA.value  # the QName's prefix is in scope
    text = fault.find("env:Reason/env:Text", NS)
    assert text is not None and text.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert fault.findtext("env:Detail/wsa:ProblemAction/wsa:Action", namespaces=NS) == (
        "urn:ihe:iti:2007:RetrieveDocumentSet"
    )
    children = [etree.QName(child).localname for child in fault]
    assert children == ["Code", "Reason", "Detail"]


@pytest.mark.parametrize(
    ("fault", "code", "subcodes", "detail", "status"),
    [
        (
            AddressingHeaderRequired(detail="wsa:Action"),
            "env:Sender",
            ["wsa:MessageAddressingHeaderRequired"],
            "wsa:Action",
            400,
        ),
        (
            AsyncNotSupported(detail="wsa:ReplyTo"),
            "env:Sender",
            ["wsa:InvalidAddressingHeader", "wsa:OnlyAnonymousAddressSupported"],
            "wsa:ReplyTo",
            400,
        ),
        (MalformedMessage(), "env:Sender", [], None, 400),
        (VersionMismatch(), "env:VersionMismatch", [], None, 500),
        (EnvelopeTooLarge(), "env:Sender", [], None, 400),
        (MtomError(), "env:Sender", [], None, 400),
    ],
)
def test_fault_codes_and_details(
    fault: SoapFault, code: str, subcodes: list[str], detail: str | None, status: int
) -> None:
    root = fault_tree(fault)
    body = root.find("env:Body/env:Fault", NS)
    assert body is not None
    assert body.findtext("env:Code/env:Value", namespaces=NS) == code
    found, level = [], body.find("env:Code", NS)
    while level is not None and (level := level.find("env:Subcode", NS)) is not None:
        found.append(level.findtext("env:Value", namespaces=NS))
    assert found == subcodes
    assert body.findtext("env:Detail/wsa:ProblemHeaderQName", namespaces=NS) == detail
    assert root.find("env:Header/wsa:RelatesTo", NS) is None
    assert fault.http_status == status
    assert body.findtext("env:Reason/env:Text", namespaces=NS) == fault.reason


def test_fault_detail_is_cut() -> None:
    fault = ActionNotSupported(detail="urn:" + "x" * 5000)
    assert fault.detail is not None and len(fault.detail) == 1024
