"""The SOAP relay cell of the bridge matrix, initiating side, end to end: RAD-69 in, RAD-75
out (design.md §1; xcai-digest.md §6.4 item 1).

Real peers: the test kit's independent consumer (:mod:`tests.functional.soapclient`) sends
RAD-69 to gateway B (an Initiating Imaging Gateway, communities A1 and A2 configured as
``rad-75`` upstreams); A1 and A2 are responding gateways, each its own process, in front of
the session's Orthanc (bridge mode: wado-rs source). Images are compared with what Orthanc
stores. The one scripted upstream (:mod:`peers.faults`) cuts its answer after the envelope,
which no real gateway does on demand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from peers.faults import FaultUpstream, Script
from peers.gateway import rad_upstream, soap_url
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy
from tests.functional.soapclient import (
    EXPLICIT_LE,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75_RESPONSE,
    SUCCESS,
    Doc,
    Part,
    Returned,
    SoapAnswer,
    content_type_params,
    mtom_package,
    new_message_id,
    rad_request,
    rad_response,
    send,
)
from tests.functional.xcairelay import (
    COMMUNITY_A1,
    COMMUNITY_A2,
    COMMUNITY_B,
    RLUID_A1,
    RLUID_A2,
    audit_events,
    docs_for,
    exchanges,
    gateway,
    rad75,
    started,
    stored_digests,
    unknown_docs,
    urn,
    wado,
)
from tests.functional.xdsi_schema import assert_valid_request, assert_valid_response


class Initiating:
    """B in front of A1 and A2, and what Orthanc stores."""

    def __init__(self, folder: Path, orthanc: OrthancServer) -> None:
        self.a1 = gateway(
            folder, "a1", COMMUNITY_A1, upstreams={"ids": wado(orthanc)}, sources={RLUID_A1: "ids"}
        )
        self.a2 = gateway(
            folder, "a2", COMMUNITY_A2, upstreams={"ids": wado(orthanc)}, sources={RLUID_A2: "ids"}
        )
        self.b = gateway(
            folder,
            "b",
            COMMUNITY_B,
            upstreams={"a1": rad75(self.a1), "a2": rad75(self.a2)},
            communities={COMMUNITY_A1: "a1", COMMUNITY_A2: "a2"},
        )
        self.stored = stored_digests(orthanc)

    async def retrieve(self, docs: list[Doc], *, message_id: str | None = None) -> SoapAnswer:
        """RAD-69 (MTOM) to B; the request checked against the schema first."""
        url = soap_url(self.b)
        envelope = rad_request(
            docs, [EXPLICIT_LE], action=RAD69, to=url, message_id=message_id or new_message_id()
        )
        assert_valid_request(envelope)
        async with aiohttp.ClientSession() as session:
            return await send(session, url, envelope, action=RAD69)


@pytest.fixture(scope="module")
def initiating(
    orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Initiating]:
    net = Initiating(tmp_path_factory.mktemp("xcai-initiating"), orthanc)
    with started(net.a1, net.a2, net.b):
        yield net


def assert_well_formed(answer: SoapAnswer, message_id: str) -> None:
    """MTOM, root part first, RelatesTo = MessageID, schema-valid, every cid resolved."""
    assert answer.http_status == 200
    assert answer.problem is None and answer.fault is None
    media, params = content_type_params(answer.content_type)
    assert media == "multipart/related"
    assert params["type"] == "application/xop+xml"
    assert params["start-info"] == "application/soap+xml"
    assert answer.root_index == 0
    assert params["start"].strip("<>") == answer.parts[0].content_id
    assert answer.closing_delimiter
    assert answer.action == RAD69_RESPONSE
    assert answer.relates_to == message_id
    assert_valid_response(answer.envelope)
    assert answer.unresolved_cids == answer.unreferenced_parts == answer.multiply_referenced == ()


@pytest.mark.xcai(1, 3, 6, 7, 12, 21, 24)
@pytest.mark.checklist(30, 31, 32, 33, 36, 39, 43, 44)
async def test_200_instances_through_two_gateways_are_byte_identical_and_unknown_ones_reported(
    initiating: Initiating, study: SyntheticStudy
) -> None:
    known = docs_for(study.instances, study.study_uid, repository=RLUID_A1, community=COMMUNITY_A1)
    unknown = unknown_docs(
        3,
        study.study_uid,
        study.instances[0].series_uid,
        repository=RLUID_A1,
        community=COMMUNITY_A1,
    )
    before = len(exchanges(initiating.a1))
    message_id = new_message_id()
    answer = await initiating.retrieve(known[:100] + unknown + known[100:], message_id=message_id)

    assert_well_formed(answer, message_id)
    assert answer.status == PARTIAL_SUCCESS
    assert len(answer.documents) == len(study.instances) == 200
    for document in answer.documents:
        assert document.home_community_id == urn(COMMUNITY_A1)
        assert document.repository_id == RLUID_A1
        assert document.mime_type == "application/dicom"
    digests = {
        document.document_uid: digest.sha256
        for document, digest in zip(answer.documents, answer.digests, strict=True)
        if digest is not None
    }
    # Every instance of the study, byte for byte, and nothing else (the session's Orthanc
    # may hold other tests' studies too).
    assert digests == {
        i.sop_instance_uid: initiating.stored[i.sop_instance_uid] for i in study.instances
    }
    assert [error.code for error in answer.errors] == ["XDSDocumentUniqueIdError"] * 3
    for error, doc in zip(answer.errors, unknown, strict=True):
        assert doc.document_uid in error.context
    # one RAD-75 to the one community involved (item 21)
    assert len(exchanges(initiating.a1)) == before + 1


@pytest.mark.xcai(21, 23, 24)
@pytest.mark.checklist(36, 38, 39)
async def test_two_communities_are_consolidated_and_one_down_is_unavailable(
    initiating: Initiating, study: SyntheticStudy
) -> None:
    first, second = (study.of_series(uid)[:10] for uid in study.series_uids)
    from_a1 = docs_for(first, study.study_uid, repository=RLUID_A1, community=COMMUNITY_A1)
    from_a2 = docs_for(second, study.study_uid, repository=RLUID_A2, community=COMMUNITY_A2)
    seen = len(exchanges(initiating.a1)), len(exchanges(initiating.a2))
    message_id = new_message_id()
    answer = await initiating.retrieve(from_a1 + from_a2, message_id=message_id)
    assert_well_formed(answer, message_id)
    assert answer.status == SUCCESS and answer.errors == ()
    communities = {d.document_uid: d.home_community_id for d in answer.documents}
    assert communities == {d.document_uid: d.home_community_id for d in from_a1 + from_a2}
    assert all(
        digest is not None and digest.sha256 == initiating.stored[doc.document_uid]
        for doc, digest in zip(answer.documents, answer.digests, strict=True)
    )
    assert (len(exchanges(initiating.a1)), len(exchanges(initiating.a2))) == (
        seen[0] + 1,
        seen[1] + 1,
    )

    initiating.a2.stop()
    try:
        message_id = new_message_id()
        down = await initiating.retrieve(from_a1 + from_a2, message_id=message_id)
    finally:
        await asyncio.to_thread(initiating.a2.__enter__)
    assert_well_formed(down, message_id)
    assert down.status == PARTIAL_SUCCESS
    assert [d.document_uid for d in down.documents] == [d.document_uid for d in from_a1]
    assert all(
        digest is not None and digest.sha256 == initiating.stored[doc.document_uid]
        for doc, digest in zip(down.documents, down.digests, strict=True)
    )
    assert [error.code for error in down.errors] == ["XDSUnavailableCommunity"] * len(from_a2)
    for error, doc in zip(down.errors, from_a2, strict=True):
        assert doc.document_uid in error.context
        assert "a2" in error.context  # the upstream that failed is named (iheos-toolkit2 #67)


def _cut_answer(docs: list[Doc], contents: list[bytes]) -> tuple[str, bytes, int]:
    """A responding gateway's MTOM answer returning ``docs``, and an offset inside its
    second part."""
    returned = [
        Returned(
            home_community_id=doc.home_community_id,
            repository_id=doc.repository_id,
            document_uid=doc.document_uid,
            content=content,
            content_id=f"part{index}@rig",
        )
        for index, (doc, content) in enumerate(zip(docs, contents, strict=True))
    ]
    envelope = rad_response(status=SUCCESS, documents=returned, action=RAD75_RESPONSE)
    parts = [Part(content_id=r.content_id or "", content=r.content) for r in returned]
    content_type, body = mtom_package(envelope, action=None, parts=parts)
    return content_type, body, body.index(contents[1]) + len(contents[1]) // 2


@pytest.mark.xcai(15)
async def test_a_rig_failing_after_its_envelope_aborts_the_client_and_is_audited_as_failure(
    study: SyntheticStudy, tmp_path: Path
) -> None:
    instances = study.instances[:2]
    docs = docs_for(instances, study.study_uid, repository=RLUID_A1, community=COMMUNITY_A1)
    content_type, body, cut_at = _cut_answer(docs, [i.part10 for i in instances])
    async with FaultUpstream() as rig:
        rig.scripts["cut"] = Script(
            headers={"Content-Type": content_type}, body=body, fault="reset", offset=cut_at
        )
        b = gateway(
            tmp_path,
            "b-cut",
            COMMUNITY_B,
            upstreams={"a1": rad_upstream("rad-75", [f"{rig.base_url}scripted/cut"])},
            communities={COMMUNITY_A1: "a1"},
        )
        await asyncio.to_thread(b.__enter__)
        try:
            url = soap_url(b)
            envelope = rad_request(docs, [EXPLICIT_LE], action=RAD69, to=url)
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.ClientPayloadError):  # aborted: no closing delimiter
                    await send(session, url, envelope, action=RAD69)
            (transferred,) = await asyncio.to_thread(audit_events, b, "110104", at_least=1)
            (accessed,) = await asyncio.to_thread(audit_events, b, "110103", at_least=1)
        finally:
            await asyncio.to_thread(b.stop)
    assert rig.paths == ["/scripted/cut"]  # the envelope and half the parts went out
    for message in (transferred, accessed):
        assert message.find("EventIdentification").get("EventOutcomeIndicator") == "8"
    assert _event_type(transferred) == "RAD-69" and _event_type(accessed) == "RAD-75"


def _event_type(message: object) -> str:
    code = message.find("EventIdentification/EventTypeCode")  # type: ignore[attr-defined]
    return str(code.get("csd-code"))
