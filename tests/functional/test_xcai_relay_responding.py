"""The SOAP relay cell of the bridge matrix, responding side, end to end: RAD-75 in, RAD-69
out (design.md §1; xcai-digest.md §2.9).

Real peers: the test kit's independent consumer sends RAD-75 to R, community C's Responding
Imaging Gateway (its own process), whose repositories are ``rad-69`` sources. One of them is
S, a second gateway process of community C in front of the session's Orthanc: asked RAD-69
for its own community it answers from its wado-rs source, so it is a RAD-69 Imaging Document
Source. The other is canned (:class:`CannedIds`), only because it must answer as dcm4chee
does — XDSMissingDocument located at the SOP Instance UID, no homeCommunityId — which no
gateway of ours does on demand; it also shows what R sent it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from peers.gateway import GatewayProcess, rad_upstream, soap_url
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy
from tests.functional.soapclient import (
    ERROR,
    EXPLICIT_LE,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75,
    RAD75_RESPONSE,
    XDSB,
    Doc,
    Part,
    RegistryErrorRow,
    Returned,
    SoapAnswer,
    content_type_params,
    mtom_package,
    new_message_id,
    parse_answer,
    rad_request,
    rad_response,
    send,
)
from tests.functional.xcairelay import (
    COMMUNITY_A1,
    COMMUNITY_C,
    RLUID_S,
    docs_for,
    exchanges,
    gateway,
    started,
    stored_digests,
    unknown_docs,
    urn,
    wado,
)
from tests.functional.xdsi_schema import assert_valid_request, assert_valid_response

RLUID_K = "1.3.6.1.4.1.21367.13.71.30.2"
UNKNOWN_REPOSITORY = "1.3.6.1.4.1.21367.13.71.30.999"
# The second syntax is one DICOMweb does not serve: the bridge leaves it out of its Accept, so
# Orthanc answers in the first and stored one (offered a compressed syntax at a lower q, the
# Orthanc of the tests transcodes to it all the same), while the RAD-69 must carry both.
IMPLICIT_LE = "1.2.840.10008.1.2"
IHERAD = "urn:ihe:rad:xdsi-b:2009"


@dataclass
class CannedIds:
    """A RAD-69 Imaging Document Source answering as dcm4chee does (module docstring): the
    first requested document returned (``content``) without homeCommunityId, the second
    reported missing at its SOP Instance UID. Records each request."""

    content: bytes
    received: list[SoapAnswer] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        sent = parse_answer(200, request.headers.get("Content-Type", ""), await request.read())
        self.received.append(sent)
        uids = [e.text for e in sent.envelope.iter(f"{{{XDSB}}}DocumentUniqueId")]
        returned = Returned(
            home_community_id=None,
            repository_id=RLUID_K,
            document_uid=uids[0],
            content=self.content,
            content_id="1@ids-k",
        )
        missing = RegistryErrorRow("XDSMissingDocument", "DICOM Object not found", uids[1], ERROR)
        envelope = rad_response(
            status=PARTIAL_SUCCESS,
            documents=[returned],
            errors=[missing],
            action=RAD69_RESPONSE,
            relates_to=sent.envelope.findtext(".//{http://www.w3.org/2005/08/addressing}MessageID"),
        )
        content_type, body = mtom_package(
            envelope, action=None, parts=[Part(content_id="1@ids-k", content=self.content)]
        )
        return web.Response(body=body, headers={"Content-Type": content_type})


@dataclass
class CommunityC:
    s: GatewayProcess
    stored: dict[str, str]  # SOP Instance UID → SHA-256 of what Orthanc stores
    folder: Path


@pytest.fixture(scope="module")
def community_c(
    orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CommunityC]:
    folder = tmp_path_factory.mktemp("xcai-responding")
    s = gateway(
        folder, "s", COMMUNITY_C, upstreams={"ids": wado(orthanc)}, sources={RLUID_S: "ids"}
    )
    with started(s):
        yield CommunityC(s=s, stored=stored_digests(orthanc), folder=folder)


@asynccontextmanager
async def canned_ids(content: bytes) -> AsyncIterator[tuple[CannedIds, str]]:
    ids = CannedIds(content)
    app = web.Application()
    app.router.add_post("/xcai", ids.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield ids, str(server.make_url("/xcai"))
    finally:
        await server.close()


@pytest.fixture
async def ids_k(study: SyntheticStudy) -> AsyncIterator[tuple[CannedIds, str]]:
    async with canned_ids(study.of_series(study.series_uids[1])[0].part10) as running:
        yield running


@pytest.mark.xcai(6, 16, 17, 18, 19, 20)
@pytest.mark.checklist(40, 41, 42, 43, 44)
async def test_rad75_in_rad69_out_per_repository_consolidated_with_our_community_everywhere(
    community_c: CommunityC, ids_k: tuple[CannedIds, str], study: SyntheticStudy
) -> None:
    ids, ids_url = ids_k
    r = gateway(
        community_c.folder,
        "r",
        COMMUNITY_C,
        upstreams={
            "s": rad_upstream("rad-69", [soap_url(community_c.s)]),
            "k": rad_upstream("rad-69", [ids_url]),
        },
        sources={RLUID_S: "s", RLUID_K: "k"},
    )
    series = study.series_uids[0]
    from_s = docs_for(
        study.of_series(series)[:10], study.study_uid, repository=RLUID_S, community=COMMUNITY_C
    )
    missing_at_s = unknown_docs(
        2, study.study_uid, series, repository=RLUID_S, community=COMMUNITY_C
    )
    from_k = [
        Doc(
            study=study.study_uid,
            series=study.series_uids[1],
            document_uid=uid,
            repository_id=RLUID_K,
            home_community_id=urn(COMMUNITY_C),
        )
        for uid in (study.of_series(study.series_uids[1])[0].sop_instance_uid, "2.25.4242")
    ]
    (no_repository,) = unknown_docs(
        1, study.study_uid, series, repository=UNKNOWN_REPOSITORY, community=COMMUNITY_C
    )
    (other_community,) = unknown_docs(
        1, study.study_uid, series, repository=RLUID_S, community=COMMUNITY_A1
    )
    requested = from_s + missing_at_s + from_k + [no_repository, other_community]
    syntaxes = [EXPLICIT_LE, IMPLICIT_LE]
    message_id = new_message_id()
    await asyncio.to_thread(r.__enter__)
    try:
        seen_at_s = len(exchanges(community_c.s))
        url = soap_url(r)
        envelope = rad_request(requested, syntaxes, action=RAD75, to=url, message_id=message_id)
        assert_valid_request(envelope)
        async with aiohttp.ClientSession() as session:
            answer = await send(session, url, envelope, action=RAD75)
        s_requests = len(exchanges(community_c.s)) - seen_at_s
    finally:
        await asyncio.to_thread(r.stop)

    # the answer: MTOM, root first, RelatesTo, schema-valid, every cid resolved
    assert answer.http_status == 200 and answer.problem is None
    assert content_type_params(answer.content_type)[1]["start-info"] == "application/soap+xml"
    assert answer.root_index == 0 and answer.closing_delimiter
    assert (answer.action, answer.relates_to) == (RAD75_RESPONSE, message_id)
    assert_valid_response(answer.envelope)
    assert answer.unresolved_cids == answer.unreferenced_parts == ()
    assert answer.status == PARTIAL_SUCCESS

    # what came back: S's ten and K's one, byte for byte, each with our community
    returned = {d.document_uid: d for d in answer.documents}
    assert set(returned) == {d.document_uid for d in from_s} | {from_k[0].document_uid}
    assert {d.home_community_id for d in answer.documents} == {urn(COMMUNITY_C)}
    assert {d.mime_type for d in answer.documents} == {"application/dicom"}
    digests = {
        d.document_uid: g.sha256 for d, g in zip(answer.documents, answer.digests, strict=True) if g
    }
    for doc in from_s:
        assert digests[doc.document_uid] == community_c.stored[doc.document_uid]
    assert digests[from_k[0].document_uid] == hashlib.sha256(ids.content).hexdigest()
    assert returned[from_k[0].document_uid].repository_id == RLUID_K

    # what was reported: every error located at our community (item 18)
    assert {error.location for error in answer.errors} == {urn(COMMUNITY_C)}
    by_code: dict[str, list[str]] = {}
    for error in answer.errors:
        by_code.setdefault(error.code, []).append(error.context)
    assert sorted(by_code) == [
        "XDSDocumentUniqueIdError",
        "XDSMissingDocument",
        "XDSUnknownCommunity",
        "XDSUnknownRepositoryId",
    ]
    assert len(by_code["XDSDocumentUniqueIdError"]) == 2
    assert all(
        any(doc.document_uid in context for context in by_code["XDSDocumentUniqueIdError"])
        for doc in missing_at_s
    )
    (relayed,) = by_code["XDSMissingDocument"]  # dcm4chee's code, relayed (item 20)
    assert f"[reported at {from_k[1].document_uid}]" in relayed  # its location kept
    (unknown_repository,) = by_code["XDSUnknownRepositoryId"]
    assert no_repository.document_uid in unknown_repository
    (unknown_community,) = by_code["XDSUnknownCommunity"]
    assert other_community.document_uid in unknown_community

    # what R sent: one RAD-69 per repository, our community, the same transfer syntaxes
    assert s_requests == 1
    (sent,) = ids.received
    assert content_type_params(sent.content_type)[1]["action"] == RAD69
    assert sent.root_index == 0 and len(sent.parts) == 1 and sent.closing_delimiter
    assert_valid_request(sent.envelope)
    requests = list(sent.envelope.iter(f"{{{XDSB}}}DocumentRequest"))
    assert [r.findtext(f"{{{XDSB}}}DocumentUniqueId") for r in requests] == [
        d.document_uid for d in from_k
    ]
    assert {r.findtext(f"{{{XDSB}}}HomeCommunityId") for r in requests} == {urn(COMMUNITY_C)}
    assert [e.text for e in sent.envelope.iter(f"{{{IHERAD}}}TransferSyntaxUID")] == syntaxes
