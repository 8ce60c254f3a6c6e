"""Every error on the XCA-I route put on the wire by :func:`soap_error` (digest §9 items 2, 5):
SOAP 1.2 Faults with the HTTP status of the SOAP HTTP binding, the edge's refusals as Faults
with their own status and headers, a Failure answer for a request that breaks a content rule,
and our own sentences only."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from lxml import etree

from gateway.errors import BodyTooLarge, RateLimited, UpstreamStatus, UriTooLong
from gateway.exchange import Exchange, Outcome
from gateway.protocols.xca.envelope import build_request, parse_request
from gateway.protocols.xca.errors import (
    ActionNotSupported,
    InvalidRequest,
    MtomError,
    VersionMismatch,
)
from gateway.protocols.xca.faults import Replying, UnsupportedMediaType, soap_error
from gateway.protocols.xca.model import Action, Addressing, DocumentRequest, RetrieveRequest
from gateway.protocols.xca.mtom import MtomReader, RootPart

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "rs": "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0",
}
MESSAGE_ID = "urn:uuid:2f1c4f3e-4b8e-4f57-9d6b-0d7e3c1a2b10"


def exchange() -> Exchange:
    return Exchange(request_id="r1", method="POST", path="/xcai", client="127.0.0.1")


def body_of(response: web.StreamResponse) -> etree._Element:
    assert isinstance(response, web.Response) and isinstance(response.body, bytes)
    return etree.fromstring(response.body)


def fault_of(response: web.StreamResponse) -> tuple[str, str | None, str, str | None]:
    """(code, subcode, reason, RelatesTo) of a Fault answer."""
    root = body_of(response)
    subcode = root.findtext("env:Body/env:Fault/env:Code/env:Subcode/env:Value", namespaces=NS)
    return (
        root.findtext("env:Body/env:Fault/env:Code/env:Value", namespaces=NS) or "",
        subcode,
        root.findtext("env:Body/env:Fault/env:Reason/env:Text", namespaces=NS) or "",
        root.findtext("env:Header/wsa:RelatesTo", namespaces=NS),
    )


@pytest.mark.xcai(2)
def test_a_soap_fault_is_a_sender_fault_with_its_status_and_relates_to_the_request() -> None:
    record = exchange()
    addressing = Addressing(action=Action.RAD_75.value, message_id=MESSAGE_ID)
    response = soap_error(Replying(ActionNotSupported(detail="urn:x"), addressing), record)
    assert response.status == 400
    assert response.content_type == "application/soap+xml"
    assert fault_of(response) == (
        "env:Sender",
        "wsa:ActionNotSupported",
        ActionNotSupported.default_reason,
        MESSAGE_ID,
    )
    assert (record.status, record.outcome) == (400, Outcome.REFUSED)
    assert response.keep_alive is not False  # the body was read whole


def test_version_mismatch_is_a_500_and_a_package_error_closes_the_connection() -> None:
    mismatch = soap_error(VersionMismatch(), exchange())
    assert mismatch.status == 500
    assert fault_of(mismatch)[0] == "env:VersionMismatch"
    unreadable = soap_error(MtomError(), exchange())
    assert unreadable.status == 400
    assert unreadable.keep_alive is False  # the rest of the body was never read


def test_neither_soap_nor_mtom_is_415() -> None:
    response = soap_error(UnsupportedMediaType(), exchange())
    assert response.status == 415
    assert fault_of(response)[0] == "env:Sender"


def test_edge_refusals_keep_their_status_and_headers_with_our_own_reason() -> None:
    limited = soap_error(RateLimited(7), exchange())
    assert (limited.status, limited.headers["Retry-After"]) == (429, "7")
    code, _, reason, relates = fault_of(limited)
    assert (code, relates) == ("env:Sender", None)
    assert reason.startswith("Too Many Requests:")
    big = soap_error(BodyTooLarge(4096), exchange())
    assert big.status == 413 and big.keep_alive is False
    assert "manifest" not in fault_of(big)[2]  # the problem detail is DICOMweb's, not ours
    long = soap_error(UriTooLong(), exchange())
    assert long.status == 414 and long.keep_alive is False
    method = soap_error(web.HTTPMethodNotAllowed("GET", ["POST"]), exchange())
    assert (method.status, method.headers["Allow"]) == (405, "POST")


def test_an_upstream_failure_is_a_receiver_fault_that_names_no_upstream() -> None:
    record = exchange()
    response = soap_error(UpstreamStatus("pacs-7", 500, ()), record)
    code, _, reason, _ = fault_of(response)
    assert (response.status, code) == (502, "env:Receiver")
    assert "pacs-7" not in reason and "500" not in reason


def test_anything_else_is_an_internal_receiver_fault_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = exchange()
    with caplog.at_level(logging.ERROR, logger="mado_gateway.xca"):
        response = soap_error(RuntimeError("secret /etc/path detail"), record)
    assert response.status == 500
    code, _, reason, _ = fault_of(response)
    assert (code, reason) == ("env:Receiver", "internal error")
    assert record.error == "internal"
    assert caplog.records and caplog.records[0].exc_info is not None
    assert isinstance(response, web.Response) and isinstance(response.body, bytes)
    assert b"secret" not in response.body


def _envelope(documents: tuple[DocumentRequest, ...], syntaxes: tuple[str, ...]) -> bytes:
    request = RetrieveRequest(documents=documents, transfer_syntaxes=syntaxes)
    return build_request(
        Addressing(action=Action.RAD_75.value, message_id=MESSAGE_ID), request
    )


@pytest.mark.xcai(5)
def test_a_request_breaking_a_content_rule_is_a_failure_answer_relating_to_it() -> None:
    document = DocumentRequest(
        study_uid="1.2.3", series_uid="1.2.3.4", repository_id="1.2.5", document_uid=" "
    )
    with pytest.raises(InvalidRequest) as caught:
        parse_request(_envelope((document,), ("1.2.840.10008.1.2.1",)), max_bytes=65536)
    record = exchange()
    response = soap_error(caught.value, record)
    assert response.status == 200
    assert (record.status, record.transaction) == (200, "RAD-75")
    assert isinstance(response, web.Response) and isinstance(response.body, bytes)
    reader = MtomReader(response.headers["Content-Type"], max_root_bytes=65536)
    (root,) = [event for event in reader.feed(response.body) if isinstance(event, RootPart)]
    reader.close()
    envelope = etree.fromstring(root.envelope)
    assert envelope.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == MESSAGE_ID
    assert envelope.findtext("env:Header/wsa:Action", namespaces=NS) == Action.RAD_75.response
    status = envelope.find("env:Body/*/rs:RegistryResponse", NS)
    assert status is not None and status.get("status", "").endswith(":Failure")
    errors = status.findall("rs:RegistryErrorList/rs:RegistryError", NS)
    assert [error.get("errorCode") for error in errors] == ["XDSRegistryError"]
