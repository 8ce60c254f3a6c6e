"""One answer from the groups' answers (:func:`consolidate`): ids echoed, Content-IDs renamed,
the responding gateway's rules, the status, and one outcome per requested document
(digest §9 items 6-8, 17-19, 24)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocols.xca.consolidate import consolidate
from gateway.protocols.xca.model import (
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveRequest,
    Status,
)
from gateway.protocols.xca.outcomes import document_error
from gateway.protocols.xca.plan import Carrier, Group, Refused
from gateway.protocols.xca.results import GroupAnswer
from routing.ids import HomeCommunityId
from routing.upstream import Protocol, Upstream

OWN = HomeCommunityId("1.3.6.1.4.1.21367.13.80.1")
OTHER = "urn:oid:1.3.6.1.4.1.21367.13.80.2"


def upstream(name: str) -> Upstream:
    return Upstream(name=name, protocol=Protocol.WADO_RS, base_urls=(f"http://{name}.test/",))


def request_doc(n: int, repository: str = "1.2.3.100", community: str | None = None) -> DocumentRequest:
    return DocumentRequest(
        study_uid="1.2.3",
        series_uid="1.2.3.1",
        repository_id=repository,
        document_uid=f"1.2.3.1.{n}",
        home_community_id=community,
    )


def returned(document: DocumentRequest, content_id: str) -> DocumentResponse:
    return DocumentResponse(
        home_community_id="urn:oid:9.9",
        repository_id=f"urn:oid:{document.repository_id}",  # another spelling of the same
        document_uid=document.document_uid,
        mime_type="",
        content_id=content_id,
    )


def new_id(index: int) -> str:
    return f"new{index}@test"


@pytest.mark.xcai(6, 7, 8, 17, 18, 19)
def test_a_responding_gateway_echoes_ids_renames_parts_and_relocates_errors() -> None:
    documents = [request_doc(n) for n in range(4)]
    unknown = request_doc(9, repository="1.2.3.999")
    group = Group(
        upstream=upstream("ids"),
        carrier=Carrier.WADO_RS,
        home_community_id=OWN,
        documents=tuple(documents),
    )
    missing = document_error(
        ErrorCode.DOCUMENT_UNIQUE_ID, documents[3], "gone", location="1.2.3.1.3"
    )
    answer = GroupAnswer(
        upstream="ids",
        documents=(
            returned(documents[1], "b"),
            returned(documents[0], "a"),
            returned(documents[0], "again"),  # a repeat: left out
            returned(request_doc(77), "stranger"),  # never asked for: left out
            returned(documents[2], "c"),
        ),
        errors=(missing,),
    )
    refusal = Refused(
        unknown,
        RegistryError(code=ErrorCode.UNKNOWN_REPOSITORY, context="no", location=OWN.urn),
    )
    result = consolidate(
        RetrieveRequest(documents=(*documents, unknown), transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        [refusal],
        [(group, answer)],
        own=OWN,
        responding=True,
        content_id=new_id,
    )
    response = result.response
    assert response.status == Status.PARTIAL_SUCCESS
    assert [d.document_uid for d in response.documents] == [
        documents[1].document_uid,
        documents[0].document_uid,
        documents[2].document_uid,
    ]
    assert all(d.home_community_id == OWN.urn for d in response.documents)
    assert all(d.repository_id == "1.2.3.100" for d in response.documents)  # as requested
    assert all(d.mime_type == "application/dicom" for d in response.documents)
    assert [d.content_id for d in response.documents] == ["new0@test", "new1@test", "new2@test"]
    assert result.renames == ({"b": "new0@test", "a": "new1@test", "c": "new2@test"},)
    assert [e.code for e in response.errors] == [
        ErrorCode.UNKNOWN_REPOSITORY,
        ErrorCode.DOCUMENT_UNIQUE_ID,
    ]
    assert all(e.location == OWN.urn for e in response.errors)
    assert "1.2.3.1.3" in response.errors[1].context  # the original location kept
    assert [(o.document_uid, o.error_code, o.upstream) for o in result.outcomes] == [
        ("1.2.3.1.0", None, "ids"),
        ("1.2.3.1.1", None, "ids"),
        ("1.2.3.1.2", None, "ids"),
        ("1.2.3.1.3", ErrorCode.DOCUMENT_UNIQUE_ID, "ids"),
        ("1.2.3.1.9", ErrorCode.UNKNOWN_REPOSITORY, None),
    ]


@pytest.mark.xcai(24)
def test_an_initiating_gateway_echoes_the_community_and_keeps_locations() -> None:
    first, second = request_doc(1, community=OTHER), request_doc(2, community=OTHER)
    group = Group(
        upstream=upstream("community-b"),
        carrier=Carrier.RAD_75,
        home_community_id=HomeCommunityId(OTHER.removeprefix("urn:oid:")),
        documents=(first, second),
    )
    inline = DocumentResponse(
        home_community_id=OTHER,
        repository_id=first.repository_id,
        document_uid=first.document_uid,
        inline=b"\r\nDICM bytes\r\n",
    )
    answer = GroupAnswer(upstream="community-b", documents=(inline,))  # silent on the other
    result = consolidate(
        RetrieveRequest(documents=(first, second), transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        [],
        [(group, answer)],
        own=OWN,
        responding=False,
        content_id=new_id,
    )
    assert result.response.documents[0].home_community_id == OTHER
    assert result.inline == (("new0@test", b"\r\nDICM bytes\r\n"),)
    (error,) = result.response.errors  # RAD69-004: the silent document gets an error
    assert error.code == ErrorCode.REPOSITORY and second.document_uid in error.context
    assert error.location == OWN.urn
    assert result.outcomes[1].error_code == ErrorCode.REPOSITORY


def test_an_error_names_a_document_by_its_whole_uid() -> None:
    short, longer = request_doc(1), request_doc(12)  # 1.2.3.1.1 is the start of 1.2.3.1.12
    group = Group(
        upstream=upstream("ids"),
        carrier=Carrier.WADO_RS,
        home_community_id=OWN,
        documents=(short, longer),
    )
    errors = (
        document_error(ErrorCode.DOCUMENT_UNIQUE_ID, longer, "gone", location=OWN.urn),
        document_error(ErrorCode.REPOSITORY_BUSY, short, "busy", location=OWN.urn),
    )
    result = consolidate(
        RetrieveRequest(documents=(short, longer), transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        [],
        [(group, GroupAnswer(upstream="ids", errors=errors))],
        own=OWN,
        responding=True,
        content_id=new_id,
    )
    assert result.response.status == Status.FAILURE
    assert [o.error_code for o in result.outcomes] == [
        ErrorCode.REPOSITORY_BUSY,
        ErrorCode.DOCUMENT_UNIQUE_ID,
    ]


@given(
    st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=12),
    st.booleans(),
)
def test_every_requested_document_is_returned_once_or_has_an_error(
    plan: list[tuple[int, bool]], responding: bool
) -> None:
    """Whatever the groups answer: one outcome per requested document, Content-IDs unique,
    status per item 8, and each document either returned or named by an error."""
    documents = [request_doc(n) for n in range(len(plan))]
    by_group: dict[int, list[tuple[DocumentRequest, bool]]] = {}
    for document, (group_index, comes_back) in zip(documents, plan, strict=True):
        by_group.setdefault(group_index, []).append((document, comes_back))
    answers = []
    counter = itertools.count()
    for group_index, members in sorted(by_group.items()):
        name = f"up{group_index}"
        group = Group(
            upstream=upstream(name),
            carrier=Carrier.WADO_RS,
            home_community_id=OWN,
            documents=tuple(d for d, _ in members),
        )
        answer = GroupAnswer(
            upstream=name,
            documents=tuple(returned(d, f"p{next(counter)}") for d, back in members if back),
            errors=tuple(
                document_error(ErrorCode.DOCUMENT_UNIQUE_ID, d, "gone", location=OWN.urn)
                for d, back in members
                if not back
            ),
        )
        answers.append((group, answer))
    result = consolidate(
        RetrieveRequest(documents=tuple(documents), transfer_syntaxes=("1.2.840.10008.1.2.1",)),
        [],
        answers,
        own=OWN,
        responding=responding,
        content_id=new_id,
    )
    back = sum(1 for _, comes_back in plan if comes_back)
    response = result.response
    assert len(result.outcomes) == len(documents)
    assert len(response.documents) == back
    assert len({d.content_id for d in response.documents}) == back
    expected = (
        Status.SUCCESS if back == len(plan) else Status.FAILURE if back == 0 else Status.PARTIAL_SUCCESS
    )
    assert response.status == expected
    for outcome, (_, comes_back) in zip(result.outcomes, plan, strict=True):
        assert (outcome.error_code is None) == comes_back
