"""Shared material of the kit's own tests (``test_soapclient*``): sample requests and a
canned MTOM answer whose parts and Content-IDs are awkward on purpose."""

from __future__ import annotations

from tests.functional.soapclient import (
    SUCCESS,
    Doc,
    Part,
    Returned,
    SoapAnswer,
    mtom_package,
    rad_response,
)

__all__ = ["DOCS", "HCID", "REPOSITORY", "assert_returned", "canned", "with_hcid"]

HCID = "urn:oid:1.3.6.1.4.1.21367.13.70.201"
REPOSITORY = "1.3.6.1.4.1.21367.13.71.201.1"
STUDY = "1.2.826.0.1.3680043.10.88.1"
DOCS = [
    Doc(study=STUDY, series=f"{STUDY}.1", document_uid=f"{STUDY}.1.1", repository_id=REPOSITORY),
    Doc(study=STUDY, series=f"{STUDY}.1", document_uid=f"{STUDY}.1.2", repository_id=REPOSITORY),
    Doc(study=STUDY, series=f"{STUDY}.2", document_uid=f"{STUDY}.2.1", repository_id=REPOSITORY),
    Doc(
        study=f"{STUDY}9",
        series=f"{STUDY}9.1",
        document_uid=f"{STUDY}9.1.1",
        repository_id="1.3.6.1.4.1.21367.13.71.201.2",
    ),
]


def with_hcid(docs: list[Doc]) -> list[Doc]:
    """``docs`` with HomeCommunityId set (what RAD-75 and IIG-bound RAD-69 carry)."""
    return [
        Doc(
            study=d.study,
            series=d.series,
            document_uid=d.document_uid,
            repository_id=d.repository_id,
            home_community_id=HCID,
        )
        for d in docs
    ]


def canned(
    contents: list[bytes], *, root_index: int = 0, encodings: list[str | None] | None = None
) -> tuple[str, bytes, list[str]]:
    """An MTOM answer returning ``contents`` as parts with awkward Content-IDs."""
    cids = [f"doc{i}+{'=/~%'[i % 4]}@mado.test" for i in range(len(contents))]
    envelope = rad_response(
        status=SUCCESS,
        documents=[
            Returned(
                home_community_id=HCID,
                repository_id=REPOSITORY,
                document_uid=f"1.2.{i}",
                content=content,
                content_id=cid,
            )
            for i, (content, cid) in enumerate(zip(contents, cids, strict=True))
        ],
        relates_to="urn:uuid:42",
    )
    parts = [
        Part(content_id=cid, content=content, transfer_encoding=encoding)
        for cid, content, encoding in zip(
            cids, contents, encodings or ["binary"] * len(contents), strict=True
        )
    ]
    content_type, body = mtom_package(envelope, action=None, parts=parts, root_index=root_index)
    return content_type, body, cids


def assert_returned(answer: SoapAnswer, contents: list[bytes], *, in_memory: bool) -> None:
    """``answer`` is :func:`canned`'s for ``contents``, read in memory or from a file."""
    assert answer.problem is None
    assert answer.status == SUCCESS
    assert answer.relates_to == "urn:uuid:42"
    assert answer.unreferenced_parts == answer.unresolved_cids == ()
    assert answer.closing_delimiter
    assert [doc.document_uid for doc in answer.documents] == [
        f"1.2.{i}" for i in range(len(contents))
    ]
    if in_memory:
        assert [doc.content for doc in answer.documents] == contents
    else:
        assert all(doc.content is None for doc in answer.documents)
    assert [d.length if d else None for d in answer.digests] == [len(c) for c in contents]
