"""An upstream's RAD-69 / RAD-75 answer held against the group's request
(:mod:`gateway.protocols.xca.screening`): what is returned, what is reported, and that no
requested document goes missing without an error."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocols.xca.model import (
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveResponse,
    Status,
)
from gateway.protocols.xca.screening import screen

OWN = "urn:oid:1.3.6.1.4.1.21367.13.70.201"
REMOTE = "urn:oid:1.3.6.1.4.1.21367.13.70.202"
REPOSITORY = "1.3.6.1.4.1.21367.13.71.201.1"
REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"aiohttp", "asyncio", "socket"}


def request(
    uid: str, *, repository: str = REPOSITORY, hcid: str | None = REMOTE
) -> DocumentRequest:
    return DocumentRequest(
        study_uid="1.2.3",
        series_uid="1.2.3.4",
        repository_id=repository,
        document_uid=uid,
        home_community_id=hcid,
    )


def returned(
    uid: str,
    *,
    repository: str = REPOSITORY,
    hcid: str | None = REMOTE,
    mime: str = "application/dicom",
    cid: str | None = None,
) -> DocumentResponse:
    return DocumentResponse(
        home_community_id=hcid,
        repository_id=repository,
        document_uid=uid,
        mime_type=mime,
        content_id=cid or f"{uid}@peer",
    )


def answer(
    *documents: DocumentResponse, errors: tuple[RegistryError, ...] = ()
) -> RetrieveResponse:
    return RetrieveResponse(status=Status.SUCCESS, documents=documents, errors=errors)


def codes(errors: tuple[RegistryError, ...]) -> list[str]:
    return [error.code for error in errors]


def test_every_returned_document_is_kept_with_its_part() -> None:
    got = screen(
        [request("1.1"), request("1.2")],
        answer(returned("1.1"), returned("1.2")),
        upstream="rig-a",
        own=OWN,
        responding=False,
        cross_community=True,
    )
    assert [d.document_uid for d in got.documents] == ["1.1", "1.2"]
    assert got.errors == ()
    assert got.wanted == {"1.1@peer", "1.2@peer"}
    assert {d.home_community_id for d in got.documents} == {REMOTE}  # an IIG keeps the RIG's


@pytest.mark.xcai(25)
@pytest.mark.parametrize(
    ("field", "changed"),
    [
        ("homeCommunityId", {"hcid": None}),
        ("mimeType", {"mime": ""}),
    ],
)
def test_a_rig_document_response_missing_a_field_is_an_error_for_that_document(
    field: str, changed: dict[str, object]
) -> None:
    got = screen(
        [request("1.1"), request("1.2")],
        answer(returned("1.1", **changed), returned("1.2")),  # type: ignore[arg-type]
        upstream="rig-a",
        own=OWN,
        responding=False,
        cross_community=True,
    )
    assert [d.document_uid for d in got.documents] == ["1.2"]
    assert codes(got.errors) == [ErrorCode.REPOSITORY]
    assert field in got.errors[0].context and "rig-a" in got.errors[0].context
    assert "1.1" in got.errors[0].context
    assert got.wanted == {"1.2@peer"}  # the refused document's part is not sent on


@pytest.mark.xcai(25)
def test_a_document_response_without_repository_is_matched_by_its_uid_and_refused() -> None:
    got = screen(
        [request("1.1")],
        answer(returned("1.1", repository="")),
        upstream="rig-a",
        own=OWN,
        responding=False,
        cross_community=True,
    )
    assert got.documents == ()
    assert codes(got.errors) == [ErrorCode.REPOSITORY]
    assert "repositoryUniqueId" in got.errors[0].context


@pytest.mark.xcai(6)
def test_an_ids_answer_without_home_community_id_gets_ours() -> None:
    got = screen(
        [request("1.1", hcid=OWN)],
        answer(returned("1.1", hcid=None)),
        upstream="ids-a",
        own=OWN,
        responding=True,
        cross_community=False,
    )
    assert [d.home_community_id for d in got.documents] == [OWN]
    assert got.errors == ()


@pytest.mark.xcai(18)
def test_a_responding_gateway_relocates_every_error_and_stamps_its_community() -> None:
    relayed = RegistryError(
        code="XDSMissingDocument", context="DICOM Object not found", location="1.2"
    )
    got = screen(
        [request("1.1", hcid=OWN), request("1.2", hcid=OWN), request("1.3", hcid=OWN)],
        answer(returned("1.1", hcid="urn:oid:9.9"), errors=(relayed,)),
        upstream="ids-a",
        own=OWN,
        responding=True,
        cross_community=False,
    )
    assert [d.home_community_id for d in got.documents] == [OWN]
    assert {error.location for error in got.errors} == {OWN}
    # the IDS's own code is relayed (item 20) and its location kept in the context
    assert got.errors[0].code == "XDSMissingDocument"
    assert "[reported at 1.2]" in got.errors[0].context
    # 1.2 is named by the relayed error (location); 1.3 by nothing: an error of our own
    assert codes(got.errors) == ["XDSMissingDocument", ErrorCode.REPOSITORY]
    assert "1.3" in got.errors[1].context and "ids-a" in got.errors[1].context


@pytest.mark.xcai(20)
def test_relayed_errors_keep_unknown_codes_and_name_their_documents() -> None:
    relayed = RegistryError(
        code="urn:dicom:wado:0007", context="no transfer syntax for 1.2.840.1.5", location=None
    )
    got = screen(
        [request("1.2.840.1.5"), request("1.2.840.1.55")],
        answer(errors=(relayed,)),
        upstream="rig-a",
        own=OWN,
        responding=False,
        cross_community=True,
    )
    assert got.errors[0] == relayed  # an initiating gateway relays errors unchanged
    # 1.2.840.1.55 starts with the UID the error names but is another document
    assert codes(got.errors) == ["urn:dicom:wado:0007", ErrorCode.REPOSITORY]
    assert "1.2.840.1.55" in got.errors[1].context


def test_documents_not_asked_for_and_repeats_are_dropped() -> None:
    got = screen(
        [request("1.1")],
        answer(returned("1.1"), returned("1.1", cid="again@peer"), returned("7.7")),
        upstream="rig-a",
        own=OWN,
        responding=False,
        cross_community=True,
    )
    assert [d.document_uid for d in got.documents] == ["1.1"]
    assert got.wanted == {"1.1@peer"}
    assert got.errors == ()


def test_a_part_without_spool_room_becomes_out_of_resources() -> None:
    got = screen(
        [request("1.1"), request("1.2")],
        answer(returned("1.1"), returned("1.2")),
        upstream="rig-a",
        own=OWN,
        responding=False,
        cross_community=True,
        lost={"1.1@peer"},
    )
    assert [d.document_uid for d in got.documents] == ["1.2"]
    assert codes(got.errors) == [ErrorCode.OUT_OF_RESOURCES]


uids = st.lists(
    st.from_regex(r"1\.2\.[1-9][0-9]{0,3}", fullmatch=True), min_size=1, max_size=12, unique=True
)


@given(uids, st.data())
def test_no_requested_document_is_ever_silently_dropped(
    requested: list[str], data: st.DataObject
) -> None:
    back = data.draw(st.lists(st.sampled_from(requested), unique=True))
    broken = data.draw(st.lists(st.sampled_from(requested), unique=True))
    named = data.draw(st.lists(st.sampled_from(requested), unique=True))
    responding = data.draw(st.booleans())
    got = screen(
        [request(uid) for uid in requested],
        answer(
            *(returned(uid, mime="" if uid in broken else "application/dicom") for uid in back),
            errors=tuple(RegistryError(code="X", context=f"missing {uid}") for uid in named),
        ),
        upstream="rig-a",
        own=OWN,
        responding=responding,
        cross_community=True,
    )
    returned_uids = {d.document_uid for d in got.documents}
    for uid in requested:
        reported = any(uid in error.context.split() for error in got.errors) or any(
            f"Document {uid} " in error.context for error in got.errors
        )
        assert uid in returned_uids or reported, uid
    assert returned_uids == {uid for uid in back if uid not in broken}
    if responding:
        assert {error.location for error in got.errors} <= {OWN}


def test_screening_is_pure() -> None:
    """design.md §9 rule 1: no aiohttp, asyncio or socket, directly or through imports."""
    path = REPO / "gateway" / "protocols" / "xca" / "screening.py"
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert not [name for name in imported if name.split(".")[0] in FORBIDDEN]
    code = (
        "import sys, gateway.protocols.xca.screening;"
        "print(','.join(m for m in ('aiohttp', 'asyncio', 'socket') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == ""
