"""SOAP envelopes and outcome rules for any values (gateway.protocols.xca.envelope,
.outcomes): requests and responses with arbitrary ids and texts are schema-valid and read back
unchanged; a mangled envelope is always answered with a SOAP fault or an InvalidRequest,
never another exception; the status rule and the Accept bridges hold for any input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols.xca.envelope import (
    build_fault,
    build_request,
    build_response,
    parse_request,
    parse_response,
)
from gateway.protocols.xca.errors import AnswerUnreadable, InvalidRequest, SoapFault
from gateway.protocols.xca.model import (
    Action,
    Addressing,
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    Namespace,
    RegistryError,
    RetrieveRequest,
    RetrieveResponse,
    Severity,
    Status,
)
from gateway.protocols.xca.outcomes import accept_for, status_for, transfer_syntaxes_for
from tests.unit.xca.xcadata import (
    assert_valid,
    body_element,
    rad69,
    request_schema,
    response_schema,
    sample_request,
)

MAX = 1 << 22
xml_text = st.text(st.characters(exclude_categories=("Cs", "Cc", "Cn")), max_size=40)
ids = xml_text.map(str.strip).filter(bool)
uids = st.lists(st.integers(0, 99), min_size=1, max_size=4).map(
    lambda parts: ".".join(map(str, parts))
)


@st.composite
def requests(draw: st.DrawFn) -> RetrieveRequest:
    studies = draw(st.lists(ids, min_size=1, max_size=3, unique=True))
    documents = []
    for study in studies:
        for series in draw(st.lists(ids, min_size=1, max_size=2, unique=True)):
            for uid in draw(st.lists(ids, min_size=1, max_size=3)):
                documents.append(
                    DocumentRequest(
                        study_uid=study,
                        series_uid=series,
                        repository_id=draw(ids),
                        document_uid=uid,
                        home_community_id=draw(st.none() | ids),
                    )
                )
    return RetrieveRequest(
        documents=tuple(documents),
        transfer_syntaxes=tuple(draw(st.lists(ids, min_size=1, max_size=4))),
    )


@pytest.mark.xcai(4, 29)
@settings(max_examples=80, deadline=None)
@given(request=requests(), namespace=st.sampled_from([Namespace.XDSB, Namespace.IHERAD]))
def test_any_request_reads_back(request: RetrieveRequest, namespace: Namespace) -> None:
    xml = build_request(rad69(), request, document_namespace=namespace)
    if namespace is Namespace.XDSB:
        assert_valid(request_schema(), body_element(xml))
    assert parse_request(xml, max_bytes=MAX)[1] == request


errors = st.builds(
    RegistryError,
    code=ids,
    context=xml_text,
    location=st.none() | xml_text,
    severity=st.sampled_from(Severity),
)
documents = st.builds(
    DocumentResponse,
    home_community_id=st.none() | ids,
    repository_id=ids,
    document_uid=ids,
    mime_type=ids,
    content_id=st.none() | xml_text.filter(bool),
    inline=st.binary(max_size=40),
).map(
    lambda d: (
        d
        if d.content_id is None
        else DocumentResponse(
            home_community_id=d.home_community_id,
            repository_id=d.repository_id,
            document_uid=d.document_uid,
            mime_type=d.mime_type,
            content_id=d.content_id,
        )
    )
)


@settings(max_examples=80, deadline=None)
@given(
    status=st.sampled_from(Status),
    found_errors=st.lists(errors, max_size=3),
    found_documents=st.lists(documents, max_size=3),
    relates_to=st.none() | ids,
)
def test_any_response_reads_back(
    status: Status,
    found_errors: list[RegistryError],
    found_documents: list[DocumentResponse],
    relates_to: str | None,
) -> None:
    response = RetrieveResponse(
        status=status, errors=tuple(found_errors), documents=tuple(found_documents)
    )
    addressing = Addressing(action=Action.RAD_69.response, relates_to=relates_to)
    xml = build_response(addressing, response)
    assert_valid(response_schema(), body_element(xml))
    read_addressing, read = parse_response(xml, max_bytes=MAX)
    assert read == response
    assert read_addressing.relates_to == relates_to


VALID = build_request(rad69(), sample_request())


@settings(max_examples=300, deadline=None)
@given(
    edits=st.lists(st.tuples(st.integers(0, len(VALID)), st.binary(max_size=8)), max_size=4),
    end=st.integers(1, len(VALID)),
)
def test_a_mangled_envelope_is_a_fault_or_invalid_never_a_crash(
    edits: list[tuple[int, bytes]], end: int
) -> None:
    xml = bytearray(VALID[:end])
    for position, replacement in edits:
        xml[position : position + len(replacement)] = replacement
    request = request_outcome(bytes(xml))
    if isinstance(request, SoapFault):
        # Our own sentence, never the parser's message; and it can be answered.
        assert request.reason.endswith(".") and "line" not in request.reason
        assert build_fault(request).startswith(b"<?xml")
    elif isinstance(request, InvalidRequest):
        assert request.registry_error.code == ErrorCode.REGISTRY
    else:
        assert request.documents and request.transfer_syntaxes
        for value in (*request.transfer_syntaxes, *(d.document_uid for d in request.documents)):
            assert value == value.strip() and 0 < len(value) <= 256
    response = response_outcome(bytes(xml))
    assert response.reason if isinstance(response, AnswerUnreadable) else response.status


def request_outcome(xml: bytes) -> RetrieveRequest | SoapFault | InvalidRequest:
    try:
        return parse_request(xml, max_bytes=MAX)[1]
    except (SoapFault, InvalidRequest) as refused:
        return refused


def response_outcome(xml: bytes) -> RetrieveResponse | AnswerUnreadable:
    try:
        return parse_response(xml, max_bytes=MAX)[1]
    except AnswerUnreadable as unreadable:
        return unreadable


@pytest.mark.xcai(8)
@given(
    requested=st.integers(1, 50),
    data=st.data(),
    severities=st.lists(st.sampled_from(Severity), max_size=4),
)
def test_status_rule(requested: int, data: st.DataObject, severities: list[Severity]) -> None:
    returned = data.draw(st.integers(0, requested), label="returned")
    found = [RegistryError(code="X", context="", severity=s) for s in severities]
    status = status_for(requested, returned, found)
    if returned == 0:
        assert status is Status.FAILURE
    elif returned == requested and Severity.ERROR not in severities:
        assert status is Status.SUCCESS
    else:
        assert status is Status.PARTIAL_SUCCESS


@given(syntaxes=st.lists(uids, max_size=30))
def test_accept_and_transfer_syntax_list_are_inverse(syntaxes: list[str]) -> None:
    forbidden = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.2"}
    kept = list(dict.fromkeys(s for s in syntaxes if s not in forbidden))
    accept = accept_for(syntaxes)
    if not kept:
        assert accept is None
    else:
        assert accept is not None
        assert transfer_syntaxes_for(accept, any_syntax=()) == tuple(kept)
