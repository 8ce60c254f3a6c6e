"""The XCA-I SOAP endpoint of a real gateway process, as a Responding Imaging Gateway in
bridge mode: RAD-75 in, one WADO-RS instance GET per document out, to the session's Orthanc
(its 200-instance study, tests/conftest.py).

Clients: the independent test consumer (:mod:`tests.functional.soapclient`: envelopes written
by hand, answers split by the standard library's ``email`` parser), MTOM and plain SOAP, and
once zeep. Every answer body is validated against the XDS.b schema; returned bytes are
compared (SHA-256) with the file Orthanc stores. A recording upstream
(:mod:`tests.functional.recorder`) stands as a second source where a test must see what the
gateway sent. The RAD-69 (initiating) side and the SOAP relay are another module's.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.protocols.xca.handler import FRAMING_ROOM
from peers.faults import multipart_body
from peers.gateway import GatewayProcess, gateway_config, soap_url, xca_server, xca_spool
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import SyntheticInstance, SyntheticStudy
from tests.functional.audit.auditpeer import event_of, parse
from tests.functional.recorder import Recorder
from tests.functional.soapclient import (
    EXPLICIT_LE,
    FAILURE,
    IHERAD,
    PARTIAL_SUCCESS,
    RAD69,
    RAD69_RESPONSE,
    RAD75,
    RAD75_RESPONSE,
    SOAP12,
    SUCCESS,
    WSA,
    Doc,
    Part,
    SoapAnswer,
    content_type_params,
    entity_expansion_envelope,
    external_entity_envelope,
    mtom_package,
    nested_envelope,
    new_message_id,
    oversized_envelope,
    rad_request,
    send,
    send_raw,
)
from tests.functional.xdsi_schema import assert_valid_request, assert_valid_response
from tests.functional.zeepclient import zeep_retrieve

OWN = "urn:oid:1.3.6.1.4.1.21367.13.80.1"  # the responding gateway's community
OTHER = "urn:oid:1.3.6.1.4.1.21367.13.80.2"
REPOSITORY = "1.3.6.1.4.1.21367.13.80.1.100"  # Orthanc
RECORDED = "1.3.6.1.4.1.21367.13.80.1.300"  # the recording upstream
UNKNOWN_REPOSITORY = "1.3.6.1.4.1.21367.13.80.1.999"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"  # Orthanc cannot make it from 16-bit CT
JPEG_2000 = "1.2.840.10008.1.2.4.91"  # nor this one
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
IMPLICIT_LE = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
ENVELOPE_CAP = 256 * 1024
BODY_LIMIT = ENVELOPE_CAP + FRAMING_ROOM  # what the route reads at most


def _config(
    orthanc: OrthancServer, recorder: Recorder, folder: Path, **spool: int
) -> dict[str, Any]:
    return gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={
            "ids": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]},
            "recorded": {"protocol": "wado-rs", "base_urls": [recorder.url]},
        },
        sources={REPOSITORY: "ids", RECORDED: "recorded"},
        xca=xca_server(
            max_envelope_bytes=ENVELOPE_CAP,
            concurrency=4,
            spool=xca_spool(folder / "spool", **spool),
        ),
    )


@pytest.fixture(scope="module")
def recorder(study: SyntheticStudy) -> Iterator[Recorder]:
    """A second source that answers every GET with the study's first instance."""
    with Recorder(multipart_body([study.instances[0].part10])) as up:
        yield up


@pytest.fixture(scope="module")
def rig(
    orthanc: OrthancServer, recorder: Recorder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    folder = tmp_path_factory.mktemp("rig")
    with GatewayProcess(folder, _config(orthanc, recorder, folder), name="rig") as gateway:
        yield gateway


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(scope="module")
def stored(orthanc: OrthancServer, study: SyntheticStudy) -> dict[str, str]:
    """SOP Instance UID → SHA-256 of the file Orthanc stores (its REST API, not the DICOMweb
    plugin the gateway asks)."""
    digests = {}
    for instance in study.instances:
        with urllib.request.urlopen(
            urllib.request.Request(
                f"{orthanc.url}/tools/lookup", data=instance.sop_instance_uid.encode()
            ),
            timeout=30,
        ) as answer:
            ident = json.loads(answer.read())[0]["ID"]
        with urllib.request.urlopen(f"{orthanc.url}/instances/{ident}/file", timeout=30) as answer:
            digests[instance.sop_instance_uid] = hashlib.sha256(answer.read()).hexdigest()
    return digests


def doc(instance: SyntheticInstance, study: SyntheticStudy, **changes: str) -> Doc:
    fields = {
        "study": study.study_uid,
        "series": instance.series_uid,
        "document_uid": instance.sop_instance_uid,
        "repository_id": REPOSITORY,
        "home_community_id": OWN,
    }
    fields.update(changes)
    return Doc(**fields)


async def rad75(
    session: aiohttp.ClientSession,
    gateway: GatewayProcess,
    documents: list[Doc],
    syntaxes: list[str] | None = None,
    *,
    mtom: bool = True,
    message_id: str | None = None,
) -> SoapAnswer:
    url = soap_url(gateway)
    envelope = rad_request(
        documents,
        [EXPLICIT_LE] if syntaxes is None else syntaxes,
        action=RAD75,
        to=url,
        message_id=message_id,
    )
    assert_valid_request(envelope)
    return await send(session, url, envelope, action=RAD75, mtom=mtom)


def assert_answer(answer: SoapAnswer, message_id: str | None = None) -> None:
    """An MTOM RAD-75 answer as the digest says (items 1, 3, 7) and valid per XDS.b."""
    assert answer.http_status == 200, answer.body
    assert answer.problem is None, answer.problem
    media, params = content_type_params(answer.content_type)
    assert media == "multipart/related"
    assert params["type"] == "application/xop+xml"
    assert params["start-info"] == "application/soap+xml"
    assert "start" in params and answer.root_index == 0 and answer.closing_delimiter
    assert answer.action == RAD75_RESPONSE
    if message_id is not None:
        assert answer.relates_to == message_id
    assert not answer.unreferenced_parts and not answer.unresolved_cids
    assert not answer.multiply_referenced
    assert_valid_response(answer.body_child)


def exchanges(gateway: GatewayProcess) -> list[dict[str, Any]]:
    return [
        json.loads(line) for line in gateway.log().splitlines() if '"msg":"exchange"' in line
    ]


@pytest.mark.xcai(1, 3, 6, 7, 8, 12, 35)
@pytest.mark.checklist(32, 33, 43, 44)
async def test_rad75_returns_every_instance_byte_identical(
    rig: GatewayProcess,
    study: SyntheticStudy,
    stored: dict[str, str],
    session: aiohttp.ClientSession,
) -> None:
    instances = study.instances  # the 200 instances
    message_id = new_message_id()
    answer = await rad75(
        session, rig, [doc(i, study) for i in instances], message_id=message_id
    )
    assert_answer(answer, message_id)
    assert answer.status == SUCCESS and not answer.errors
    assert len(answer.documents) == len(instances)
    for instance in instances:
        returned = answer.document(instance.sop_instance_uid)
        assert returned.home_community_id == OWN
        assert returned.repository_id == REPOSITORY
        assert returned.mime_type == "application/dicom"
        assert returned.content is not None
        assert hashlib.sha256(returned.content).hexdigest() == stored[instance.sop_instance_uid]
    last = exchanges(rig)[-1]
    assert (last["status"], last["outcome"], last["route"]) == (200, "complete", "responding")
    assert last["attempts"] == len(instances)  # one GET per DocumentRequest
    assert last["instances"] == len(instances)  # every part's header was read


@pytest.mark.xcai(38, 39, 40)
async def test_the_answer_is_audited_with_the_patient_read_from_the_returned_instances(
    rig: GatewayProcess, study: SyntheticStudy, session: aiohttp.ClientSession
) -> None:
    chosen = study.instances[150:153]  # documents no other test asks for
    answer = await rad75(session, rig, [doc(i, study) for i in chosen])
    assert answer.status == SUCCESS
    wanted = {i.sop_instance_uid for i in chosen}
    root = await asyncio.to_thread(_audited, rig.audit_folder / "audit.log", wanted)
    assert root.find("EventIdentification/EventTypeCode").get("csd-code") == "RAD-75"
    assert root.find("EventIdentification").get("EventOutcomeIndicator") == "0"
    objects = root.findall("ParticipantObjectIdentification")
    (patient,) = [o for o in objects if o.get("ParticipantObjectTypeCodeRole") == "1"]
    assert patient.get("ParticipantObjectID", "").startswith(f"{study.patient_id}^^^")
    source = next(
        p
        for p in root.findall("ActiveParticipant")
        if p.find("RoleIDCode") is not None and p.find("RoleIDCode").get("csd-code") == "110153"
    )
    assert source.get("UserIsRequestor") == "false"  # this gateway sent the images


def _audited(log: Path, documents: set[str], timeout_s: float = 20) -> Any:
    """The 110104 message naming ``documents`` among the audit file's lines (it is written
    from the journal in the background)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lines = log.read_bytes().split(b"\n")[:-1] if log.exists() else []
        for line in lines:
            root = parse(line)
            if event_of(root) != "110104":
                continue
            named = {
                detail.get("value")
                for detail in root.iter("ParticipantObjectDetail")
            }
            text = b" ".join(base64.b64decode(v or "") for v in named)
            if all(uid.encode() in text for uid in documents):
                return root
        time.sleep(0.1)
    raise AssertionError(f"no 110104 message for {sorted(documents)} in {log}")


@pytest.mark.xcai(1, 4)
async def test_plain_soap_and_iherad_document_requests_are_answered_with_mtom(
    rig: GatewayProcess, study: SyntheticStudy, session: aiohttp.ClientSession
) -> None:
    documents = [doc(i, study) for i in study.instances[:2]]
    plain = await rad75(session, rig, documents, mtom=False)
    assert_answer(plain)
    assert plain.status == SUCCESS and len(plain.documents) == 2
    url = soap_url(rig)
    envelope = rad_request(documents, [EXPLICIT_LE], action=RAD75, to=url, document_namespace=IHERAD)
    ipf_style = await send(session, url, envelope, action=RAD75)
    assert_answer(ipf_style)
    assert ipf_style.status == SUCCESS and len(ipf_style.documents) == 2


@pytest.mark.xcai(9, 18)
@pytest.mark.checklist(41)
async def test_unknown_sop_instances_are_a_partial_success_naming_exactly_those(
    rig: GatewayProcess, study: SyntheticStudy, session: aiohttp.ClientSession
) -> None:
    known = [doc(i, study) for i in study.instances[:4]]
    unknown = [
        doc(study.instances[0], study, document_uid=f"{study.instances[0].sop_instance_uid}9{n}")
        for n in range(3)
    ]
    answer = await rad75(session, rig, known[:2] + unknown + known[2:])
    assert_answer(answer)
    assert answer.status == PARTIAL_SUCCESS
    assert {d.document_uid for d in answer.documents} == {d.document_uid for d in known}
    assert [e.code for e in answer.errors] == ["XDSDocumentUniqueIdError"] * 3
    for error, missing in zip(answer.errors, unknown, strict=True):
        assert missing.document_uid in error.context
        assert error.location == OWN
    assert "404" not in " ".join(e.context for e in answer.errors)  # no HTTP status leaks


@pytest.mark.xcai(17, 19)
@pytest.mark.checklist(40)
async def test_unknown_repository_and_community_are_refused_for_those_documents_only(
    rig: GatewayProcess, study: SyntheticStudy, session: aiohttp.ClientSession
) -> None:
    good = [doc(i, study) for i in study.instances[:2]]
    elsewhere = doc(study.instances[2], study, repository_id=UNKNOWN_REPOSITORY)
    foreign = doc(study.instances[3], study, home_community_id=OTHER)
    answer = await rad75(session, rig, [*good, elsewhere, foreign])
    assert_answer(answer)
    assert answer.status == PARTIAL_SUCCESS
    assert {d.document_uid for d in answer.documents} == {d.document_uid for d in good}
    codes = {e.code: e for e in answer.errors}
    assert set(codes) == {"XDSUnknownRepositoryId", "XDSUnknownCommunity"}
    assert elsewhere.document_uid in codes["XDSUnknownRepositoryId"].context
    assert foreign.document_uid in codes["XDSUnknownCommunity"].context
    assert all(e.location == OWN for e in answer.errors)


@pytest.mark.xcai(10, 11, 36)
@pytest.mark.checklist(45)
async def test_transfer_syntaxes_are_asked_for_and_never_substituted(
    rig: GatewayProcess,
    study: SyntheticStudy,
    stored: dict[str, str],
    session: aiohttp.ClientSession,
) -> None:
    instance = study.instances[5]
    one = [doc(instance, study)]
    cannot, neither, second, implicit, substituted, first = await asyncio.gather(
        # Orthanc cannot encode 16-bit CT as JPEG Baseline or JPEG 2000: it answers 500.
        rad75(session, rig, one, [JPEG_BASELINE]),
        rad75(session, rig, one, [JPEG_BASELINE, JPEG_2000]),
        rad75(session, rig, one, [JPEG_BASELINE, EXPLICIT_LE]),
        rad75(session, rig, one, [IMPLICIT_LE]),  # nothing DICOMweb may be asked for
        # The recording source answers Explicit VR Little Endian whatever it is asked: the
        # gateway reads the File Meta and does not pass another syntax off as the one asked.
        rad75(session, rig, [doc(instance, study, repository_id=RECORDED)], [JPEG_LOSSLESS]),
        # Both available: the first choice wins (Orthanc ranks Accept ranges by position,
        # not by q-value; the gateway writes the preferred one where both agree).
        rad75(session, rig, one, [EXPLICIT_LE, JPEG_LOSSLESS]),
    )
    for failed in (cannot, neither, implicit, substituted):
        assert_answer(failed)
        assert failed.status == FAILURE and not failed.documents
        assert [e.code for e in failed.errors] == ["XDSRepositoryError"]
    for refused in (implicit, substituted):
        assert "transfer syntax" in refused.errors[0].context
    assert_answer(second)
    assert second.status == SUCCESS
    content = second.document(instance.sop_instance_uid).content
    assert content is not None and EXPLICIT_LE.encode() in content[128:400]
    assert first.status == SUCCESS
    content = first.document(instance.sop_instance_uid).content
    assert content is not None
    assert hashlib.sha256(content).hexdigest() == stored[instance.sop_instance_uid]


@pytest.mark.xcai(35)
async def test_one_get_per_document_with_an_accept_dicomweb_can_serve(
    rig: GatewayProcess,
    recorder: Recorder,
    study: SyntheticStudy,
    session: aiohttp.ClientSession,
) -> None:
    before = len(recorder.requests)
    instance = study.instances[0]  # what the recorder answers
    documents = [
        doc(instance, study, repository_id=RECORDED),
        doc(study.instances[1], study, repository_id=RECORDED),
    ]
    answer = await rad75(
        session, rig, documents, [JPEG_LOSSLESS, IMPLICIT_LE, EXPLICIT_LE, BIG_ENDIAN]
    )
    assert_answer(answer)
    seen = recorder.requests[before:]
    assert sorted(r.target.decode() for r in seen) == sorted(
        f"/studies/{d.study}/series/{d.series}/instances/{d.document_uid}" for d in documents
    )
    for request in seen:
        (accept,) = request.header("Accept")
        assert f"transfer-syntax={JPEG_LOSSLESS}" in accept
        assert f"transfer-syntax={EXPLICIT_LE}" in accept
        assert f"transfer-syntax={IMPLICIT_LE};" not in accept + ";"
        assert BIG_ENDIAN not in accept
    # The recorder sends the first instance for both: the second document's part is that
    # file, returned as the source sent it (the bridge does not check whose it is).
    assert answer.status == SUCCESS


@pytest.mark.xcai(37)
async def test_past_the_spool_budget_the_rest_is_reported_to_ask_again(
    orthanc: OrthancServer,
    recorder: Recorder,
    study: SyntheticStudy,
    tmp_path: Path,
    session: aiohttp.ClientSession,
) -> None:
    size = len(study.instances[0].part10)
    config = _config(orthanc, recorder, tmp_path, max_request_bytes=int(size * 3.5))
    config["server"]["xca"]["concurrency"] = 1  # so "the rest" is a fixed set
    with GatewayProcess(tmp_path, config, name="small-spool") as gateway:
        instances = study.instances[:8]
        answer = await rad75(session, gateway, [doc(i, study) for i in instances])
        assert_answer(answer)
        assert answer.status == PARTIAL_SUCCESS
        assert [d.document_uid for d in answer.documents] == [
            i.sop_instance_uid for i in instances[:3]
        ]
        assert [e.code for e in answer.errors] == ["XDSRepositoryOutOfResources"] * 5
        again = await rad75(session, gateway, [doc(i, study) for i in instances[3:6]])
        assert again.status == SUCCESS  # the budget was the request's: asking again works


@pytest.mark.xcai(1)
def test_zeep_as_a_second_consumer(rig: GatewayProcess, study: SyntheticStudy) -> None:
    # zeep strips CR/LF bytes at both edges of a binary part (xcai-digest §4.6): only
    # instances whose bytes neither start nor end with them can be compared byte for byte.
    chosen = [
        i for i in study.instances if not i.part10.endswith((b"\r", b"\n"))
    ][:3]
    status, returned, errors = zeep_retrieve(
        soap_url(rig), [doc(i, study) for i in chosen], [EXPLICIT_LE], action=RAD75
    )
    assert status == SUCCESS and not errors
    assert dict(returned) == {i.sop_instance_uid: i.part10 for i in chosen}


async def _chunked(size: int) -> AsyncIterator[bytes]:
    for start in range(0, size, 65536):
        yield b" " * min(65536, size - start)


def _hostile(url: str, study: SyntheticStudy) -> list[tuple[str, str | None, bytes]]:
    """(what, Content-Type, body) of requests that must each be refused without effect."""
    good = [doc(i, study) for i in study.instances[:1]]
    envelope = rad_request(good, [EXPLICIT_LE], action=RAD75, to=url)
    include = envelope.replace(
        good[0].document_uid.encode(),
        b'<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:none@x"/>',
    )
    nested_type, nested_part = mtom_package(b"--inner--", action=None)
    return [
        ("external entity", *mtom_package(external_entity_envelope("file:///etc/passwd"), action=RAD75)),
        ("entity expansion", *mtom_package(entity_expansion_envelope(), action=RAD75)),
        ("deep nesting", *mtom_package(nested_envelope(5000), action=RAD75)),
        (
            "oversize envelope",
            *mtom_package(
                oversized_envelope(ENVELOPE_CAP + 10, good, action=RAD75, to=url), action=RAD75
            ),
        ),
        ("unresolved content id", *mtom_package(include, action=RAD75)),
        ("no closing delimiter", *mtom_package(envelope, action=RAD75, close=False)),
        (
            "nested multipart",
            *mtom_package(
                envelope,
                action=RAD75,
                parts=[Part(content_id="inner@x", content=nested_part, content_type=nested_type)],
            ),
        ),
        ("an attachment", *mtom_package(envelope, action=RAD75, parts=[Part(content_id="a@x", content=b"x")])),
        ("unknown action", *mtom_package(rad_request(good, [EXPLICIT_LE], action="urn:x:nothing", to=url), action=RAD75)),
        ("reply elsewhere", *mtom_package(rad_request(good, [EXPLICIT_LE], action=RAD75, to=url, reply_to="http://127.0.0.1:9/"), action=RAD75)),
        ("not SOAP", "text/plain", b"hello"),
        ("SOAP 1.1", "text/xml", envelope),
        ("no Content-Type", None, envelope),
        ("garbage as SOAP", "application/soap+xml", b"\x00\xff<<<"),
    ]


@pytest.mark.xcai(2, 5)
@pytest.mark.checklist(35)
async def test_hostile_requests_each_get_a_fault_or_failure_and_the_gateway_keeps_serving(
    rig: GatewayProcess, study: SyntheticStudy, session: aiohttp.ClientSession
) -> None:
    url = soap_url(rig)
    answers: dict[str, SoapAnswer] = {}
    for what, content_type, body in _hostile(url, study):
        answer = await send_raw(session, url, body, content_type)
        if answer.fault is not None:
            assert 400 <= answer.http_status < 500, what
            assert answer.fault.code == f"{{{SOAP12}}}Sender", what
            assert "/etc/passwd" not in answer.fault.reason and "root:" not in answer.fault.reason
        else:
            assert (answer.http_status, answer.status) == (200, FAILURE), what
            assert [e.code for e in answer.errors] == ["XDSRegistryError"], what
        assert answer.body is not None and b"root:" not in answer.body
        answers[what] = answer
    faults = {what: answer.fault for what, answer in answers.items()}
    assert faults["unknown action"] is not None
    assert faults["unknown action"].subcode == f"{{{WSA}}}ActionNotSupported"
    assert faults["reply elsewhere"] is not None
    assert faults["reply elsewhere"].subcode == f"{{{WSA}}}InvalidAddressingHeader"
    assert answers["not SOAP"].http_status == 415
    bodies: list[bytes | AsyncIterator[bytes]] = [b" " * (BODY_LIMIT + 1), _chunked(BODY_LIMIT + 1)]
    for too_much in bodies:  # its length known at once, or not
        too_big = await send_raw(session, url, too_much, "application/soap+xml")
        assert too_big.http_status == 413 and too_big.fault is not None
    no_syntaxes = rad_request([doc(study.instances[0], study)], None, action=RAD75, to=url)
    failure = await send(session, url, no_syntaxes, action=RAD75)
    assert failure.status == FAILURE and failure.relates_to is not None
    assert exchanges(rig)[-1]["attempts"] == 0  # no upstream call
    answer = await rad75(session, rig, [doc(study.instances[0], study)])
    assert answer.status == SUCCESS and len(answer.documents) == 1


@pytest.mark.xcai(2, 3)
@pytest.mark.checklist(30, 32)
async def test_routing_is_on_wsa_action_not_on_the_http_action(
    rig: GatewayProcess, study: SyntheticStudy, session: aiohttp.ClientSession
) -> None:
    url = soap_url(rig)
    documents = [doc(study.instances[0], study)]
    envelope = rad_request(documents, [EXPLICIT_LE], action=RAD75, to=url)
    content_type, body = mtom_package(envelope, action=RAD69)  # the HTTP action lies
    answer = await send_raw(session, url, body, content_type, headers={"SOAPAction": RAD69})
    assert_answer(answer)
    assert answer.status == SUCCESS
    # RAD-69 for this gateway's own community is answered too, with the ITI-43 action.
    message_id = new_message_id()
    envelope = rad_request(documents, [EXPLICIT_LE], action=RAD69, to=url, message_id=message_id)
    content_type, body = mtom_package(envelope, action=RAD75)
    rad69 = await send_raw(session, url, body, content_type)
    assert rad69.action == RAD69_RESPONSE and rad69.relates_to == message_id
    assert rad69.status == SUCCESS and rad69.documents[0].home_community_id == OWN
    assert_valid_response(rad69.body_child)
    assert exchanges(rig)[-1]["route"] == "initiating"

