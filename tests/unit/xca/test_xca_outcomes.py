"""Outcome rules (gateway.protocols.xca.outcomes): status consolidation, error relocation,
the WADO-RS and routing error mappings, the Accept ↔ TransferSyntaxUIDList bridges and the
HTTP answer of a bridged RAD-160."""

from __future__ import annotations

import pytest

from gateway.protocols.xca.model import (
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveResponse,
    Severity,
    Status,
)
from gateway.protocols.xca.outcomes import (
    PARTIAL_WARNING,
    TRANSFER_SYNTAX_CONTEXT,
    Unroutable,
    accept_for,
    community_error,
    document_error,
    http_answer,
    is_transfer_syntax_error,
    missing_fields,
    relocate,
    status_for,
    transfer_syntaxes_for,
    wado_error,
)
from tests.unit.xca.xcadata import document

ERROR = RegistryError(code=ErrorCode.DOCUMENT_UNIQUE_ID, context="gone")
WARNING = RegistryError(code="XDSX", context="note", severity=Severity.WARNING)
DOC = document("1.2.3.4.5.1.1.1")
EVLE = "1.2.840.10008.1.2.1"
JPEG_LL = "1.2.840.10008.1.2.4.70"
J2K = "1.2.840.10008.1.2.4.90"


@pytest.mark.xcai(8)
@pytest.mark.parametrize(
    ("requested", "returned", "errors", "status"),
    [
        (2, 2, [], Status.SUCCESS),
        (2, 2, [WARNING], Status.SUCCESS),
        (2, 2, [ERROR], Status.PARTIAL_SUCCESS),
        (2, 1, [ERROR], Status.PARTIAL_SUCCESS),
        (2, 1, [], Status.PARTIAL_SUCCESS),
        (2, 0, [ERROR, ERROR], Status.FAILURE),
        (1, 0, [], Status.FAILURE),
        (1, 0, [WARNING], Status.FAILURE),
    ],
)
def test_status_follows_rule_8(
    requested: int, returned: int, errors: list[RegistryError], status: Status
) -> None:
    assert status_for(requested, returned, errors) is status


@pytest.mark.xcai(18)
def test_relocated_errors_carry_our_community_and_keep_the_original_location() -> None:
    relayed = RegistryError(
        code="XDSMissingDocument", context="DICOM Object not found", location="1.2.3.4.5"
    )
    moved = relocate(relayed, "1.3.6.1.4.1.21367.13.70.201")
    assert moved.location == "urn:oid:1.3.6.1.4.1.21367.13.70.201"
    assert moved.code == "XDSMissingDocument" and moved.severity is Severity.ERROR
    assert moved.context.startswith("DICOM Object not found")
    assert "1.2.3.4.5" in moved.context
    assert relocate(moved, "urn:oid:1.3.6.1.4.1.21367.13.70.201") == moved
    assert relocate(ERROR, "oid:9.9").location == "urn:oid:9.9"
    assert relocate(ERROR, "oid:9.9").context == "gone"
    same = RegistryError(code="X", context="c", location="9.9")
    assert relocate(same, "urn:oid:9.9").context == "c"


def test_document_errors_name_the_document() -> None:
    error = document_error(ErrorCode.REPOSITORY, DOC, "it broke", location="urn:oid:1")
    assert error.code == ErrorCode.REPOSITORY and error.location == "urn:oid:1"
    assert "1.2.3.4.5.1.1.1" in error.context and "it broke" in error.context


@pytest.mark.parametrize(
    ("status", "failure", "code"),
    [
        (404, None, ErrorCode.DOCUMENT_UNIQUE_ID),
        (410, None, ErrorCode.DOCUMENT_UNIQUE_ID),
        (401, None, ErrorCode.DOCUMENT_UNIQUE_ID),
        (403, None, ErrorCode.DOCUMENT_UNIQUE_ID),
        (406, None, ErrorCode.REPOSITORY),
        (503, None, ErrorCode.REPOSITORY_BUSY),
        (500, None, ErrorCode.REPOSITORY),
        (502, None, ErrorCode.REPOSITORY),
        (400, None, ErrorCode.REPOSITORY),
        (None, "timeout after 30 s", ErrorCode.REPOSITORY),
        (None, None, ErrorCode.REPOSITORY),
    ],
)
def test_wado_outcomes_map_to_registry_errors(
    status: int | None, failure: str | None, code: ErrorCode
) -> None:
    error = wado_error(status, failure, DOC, location="urn:oid:1")
    assert error.code == code
    assert error.location == "urn:oid:1"
    assert DOC.document_uid in error.context
    assert is_transfer_syntax_error(error) is (status == 406)


def test_a_failure_reason_is_bounded_and_single_line() -> None:
    error = wado_error(None, "x\r\ny" * 200, DOC, location="l")
    assert "\n" not in error.context and "\r" not in error.context
    assert len(error.context) < 300


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (Unroutable.MISSING_COMMUNITY, "XDSMissingHomeCommunityId"),
        (Unroutable.UNKNOWN_COMMUNITY, "XDSUnknownCommunity"),
        (Unroutable.UNAVAILABLE_COMMUNITY, "XDSUnavailableCommunity"),
        (Unroutable.UNKNOWN_REPOSITORY, "XDSUnknownRepositoryId"),
    ],
)
def test_routing_errors(reason: Unroutable, code: str) -> None:
    error = community_error(reason, DOC, location="urn:oid:1", failure="connect refused")
    assert error.code == code and error.location == "urn:oid:1"
    assert DOC.document_uid in error.context


def test_transfer_syntax_errors_are_recognised() -> None:
    ours = wado_error(406, None, DOC, location="l")
    assert TRANSFER_SYNTAX_CONTEXT in ours.context
    assert is_transfer_syntax_error(ours)
    assert is_transfer_syntax_error(RegistryError(code="urn:dicom:wado:0007", context=""))
    nist = RegistryError(
        code="XDSRepositoryError",
        context="Cannot encode the pixel data in any requested Transfer Syntax",
    )
    assert is_transfer_syntax_error(nist)
    assert not is_transfer_syntax_error(RegistryError(code="XDSRepositoryError", context="down"))
    assert not is_transfer_syntax_error(
        RegistryError(code="XDSDocumentUniqueIdError", context="transfer syntax")
    )


def test_missing_fields() -> None:
    full = DocumentResponse(
        home_community_id="urn:oid:1", repository_id="1", document_uid="2", content_id="c"
    )
    assert missing_fields(full) is None
    bare = DocumentResponse(
        home_community_id=None, repository_id=" ", document_uid="2", mime_type="", inline=b""
    )
    assert missing_fields(bare) == "homeCommunityId, repositoryUniqueId, mimeType"


def test_accept_for_one_instance() -> None:
    assert accept_for([J2K, "1.2.840.10008.1.2", EVLE]) == (  # least preferred first
        f'multipart/related; type="application/dicom"; transfer-syntax={EVLE};q=0.9, '
        f'multipart/related; type="application/dicom"; transfer-syntax={J2K}'
    )
    assert accept_for(["1.2.840.10008.1.2"]) is None
    assert accept_for(["1.2.840.10008.1.2.2", "urn:oid:1.2.840.10008.1.2"]) is None
    assert accept_for([]) is None
    assert accept_for([EVLE, EVLE, "urn:oid:" + EVLE]) == (
        f'multipart/related; type="application/dicom"; transfer-syntax={EVLE}'
    )
    assert accept_for(['1.2"; x=y', "1.2.840.10008.1.2.4.50\r\nX: y"]) is None


def test_accept_q_values_stay_positive_and_decreasing() -> None:
    syntaxes = [f"1.2.3.{index}" for index in range(1, 40)]
    accept = accept_for(syntaxes)
    assert accept is not None
    assert transfer_syntaxes_for(accept, any_syntax=()) == tuple(syntaxes)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, (EVLE,)),
        ("", (EVLE,)),
        ('multipart/related; type="application/dicom"', (EVLE,)),
        ("multipart/related; type=application/dicom; transfer-syntax=*", (J2K, EVLE)),
        (
            f'multipart/related; type="application/dicom"; transfer-syntax={EVLE}; q=0.5, '
            f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LL}',
            (JPEG_LL, EVLE),
        ),
        (
            f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LL}, '
            f'multipart/related; type="application/dicom"; transfer-syntax={EVLE}',
            (JPEG_LL, EVLE),
        ),
        (
            f'multipart/related; type="application/dicom"; transfer-syntax={JPEG_LL};q=0, '
            'multipart/related; type="application/dicom"',
            (EVLE,),
        ),
        (f"multipart/related; type=application/dicom; Transfer-Syntax=urn:oid:{J2K}", (J2K,)),
        ("application/dicom+json", ()),
        ('multipart/related; type="application/octet-stream"', ()),
        ("*/*", (EVLE,)),
    ],
)
def test_rad160_accept_becomes_a_transfer_syntax_list(
    accept: str | None, expected: tuple[str, ...]
) -> None:
    assert transfer_syntaxes_for(accept, any_syntax=(J2K, EVLE)) == expected


def failure(*errors: RegistryError) -> RetrieveResponse:
    return RetrieveResponse(status=Status.FAILURE, errors=errors)


TS = wado_error(406, None, DOC, location="l")
UNAVAILABLE = community_error(Unroutable.UNAVAILABLE_COMMUNITY, DOC, location="l")
UNKNOWN = community_error(Unroutable.UNKNOWN_COMMUNITY, DOC, location="l")


@pytest.mark.parametrize(
    ("response", "answer"),
    [
        (RetrieveResponse(status=Status.SUCCESS), (200, None)),
        (RetrieveResponse(status=Status.PARTIAL_SUCCESS, errors=(ERROR,)), (206, PARTIAL_WARNING)),
        (failure(TS), (406, None)),
        (failure(TS, RegistryError(code="urn:dicom:wado:0007", context="")), (406, None)),
        (failure(TS, ERROR), (404, None)),
        (failure(UNAVAILABLE), (502, None)),
        (failure(UNAVAILABLE, UNKNOWN), (404, None)),
        (failure(UNKNOWN), (404, None)),
        (failure(), (404, None)),
        (RetrieveResponse(status="urn:example:Odd"), (502, None)),
    ],
)
def test_http_answer_of_a_bridged_retrieve(
    response: RetrieveResponse, answer: tuple[int, str | None]
) -> None:
    assert http_answer(response) == answer


def test_partial_warning_has_the_rfc_7234_form() -> None:
    code, agent, text = PARTIAL_WARNING.split(" ", 2)
    assert (code, agent) == ("299", "-")
    assert text.startswith('"') and text.endswith('"') and '"' not in text[1:-1]
