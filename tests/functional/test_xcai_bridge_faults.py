"""The RAD-75 → WADO-RS bridge against a scripted source, for what Orthanc cannot be made to
do on demand: every WADO-RS outcome of digest §8.3 mapped to its RegistryError, answers cut,
stalled, unframed or holding something else than one instance, bytes with CR/LF at both
edges, ids that must never reach a URL, and a full spool (items 9, 13, 35-37).

An in-process gateway (real loopback sockets) whose one ``wado-rs`` source is
:class:`peers.faults.FaultUpstream`; each DocumentRequest's SOP Instance UID picks its script.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pydicom
import pytest

from gateway.settings import ServerSettings, SpoolSettings, XcaSettings
from peers.faults import MULTIPART, FaultUpstream, Script, multipart_body
from peers.studies import make_study
from tests.functional.inprocess import OWN, Running, running_gateway
from tests.functional.soapclient import (
    EXPLICIT_LE,
    PARTIAL_SUCCESS,
    RAD75,
    Doc,
    SoapAnswer,
    rad_request,
    send,
)
from tests.functional.xdsi_schema import assert_valid_response

STUDY = make_study(seed="xcai-bridge", series_count=1, instances_per_series=2, rows=8, columns=8)
SERIES = STUDY.instances[0].series_uid


def _edgy(part10: bytes) -> bytes:
    """The instance with CR LF as its first and last bytes: a preamble is free bytes
    (PS3.10 §7.1) and the file ends in its native pixel data."""
    edgy = b"\r\n" + part10[2:-2] + b"\r\n"
    pydicom.dcmread(io.BytesIO(edgy))  # still a readable Part 10 object
    return edgy


INSTANCE = STUDY.instances[0].part10
EDGY = _edgy(STUDY.instances[1].part10)


def dicom(*parts: bytes) -> dict[str, object]:
    return {"headers": {"Content-Type": MULTIPART}, "body": multipart_body(list(parts))}


SCRIPTS = {
    "1.9.1": Script(**dicom(INSTANCE)),  # type: ignore[arg-type]
    "1.9.2": Script(**dicom(EDGY)),  # type: ignore[arg-type]
    "1.9.3": Script(headers={"Content-Type": "application/dicom"}, body=INSTANCE),
    "1.9.10": Script(status="404 Not Found"),
    "1.9.11": Script(status="410 Gone"),
    "1.9.12": Script(status="403 Forbidden"),
    "1.9.13": Script(status="406 Not Acceptable"),
    "1.9.14": Script(status="503 Service Unavailable"),
    "1.9.15": Script(status="500 Internal Server Error", body=b"stack trace of the source"),
    "1.9.16": Script(**dicom(INSTANCE), fault="reset", offset=len(INSTANCE) // 2),  # type: ignore[arg-type]
    "1.9.17": Script(
        headers={"Content-Type": MULTIPART}, body=multipart_body([INSTANCE])[:-30]
    ),  # complete HTTP, but no closing delimiter
    "1.9.18": Script(**dicom(INSTANCE, INSTANCE)),  # type: ignore[arg-type]
    "1.9.19": Script(headers={"Content-Type": "text/html"}, body=b"<html>login</html>"),
    "1.9.20": Script(**dicom(b"not a DICOM object at all" * 10)),  # type: ignore[arg-type]
    "1.9.21": Script(**dicom(INSTANCE), fault="stall", offset=1000),  # type: ignore[arg-type]
}
EXPECTED = {
    "1.9.10": ("XDSDocumentUniqueIdError", "does not hold"),
    "1.9.11": ("XDSDocumentUniqueIdError", "does not hold"),
    "1.9.12": ("XDSDocumentUniqueIdError", "refused access"),
    "1.9.13": ("XDSRepositoryError", "transfer syntax"),
    "1.9.14": ("XDSRepositoryBusy", "busy"),
    "1.9.15": ("XDSRepositoryError", "HTTP 500"),
    "1.9.16": ("XDSRepositoryError", "cut off"),
    "1.9.17": ("XDSRepositoryError", "cut off"),
    "1.9.18": ("XDSRepositoryError", "other than one DICOM instance"),
    "1.9.19": ("XDSRepositoryError", "other than one DICOM instance"),
    "1.9.20": ("XDSRepositoryError", "other than one DICOM instance"),
    "1.9.21": ("XDSRepositoryError", "cut off (stalled)"),
}


def doc(sop: str, **changes: str) -> Doc:
    fields = {
        "study": STUDY.study_uid,
        "series": SERIES,
        "document_uid": sop,
        "repository_id": "1.2.3.1",
        "home_community_id": f"urn:oid:{OWN}",
    }
    fields.update(changes)
    return Doc(**fields)


def settings(folder: Path, **spool: int) -> ServerSettings:
    return ServerSettings(
        xca=XcaSettings(concurrency=4, spool=SpoolSettings(directory=str(folder), **spool))
    )


@pytest.fixture
async def source() -> AsyncIterator[FaultUpstream]:
    async with FaultUpstream(scripts=dict(SCRIPTS), stall_s=3.0) as up:
        yield up


async def rad75(gateway: Running, documents: list[Doc]) -> SoapAnswer:
    url = str(gateway.server.make_url("/xcai"))
    envelope = rad_request(documents, [EXPLICIT_LE], action=RAD75, to=url)
    async with aiohttp.ClientSession() as session:
        answer = await send(session, url, envelope, action=RAD75)
    assert answer.http_status == 200 and answer.problem is None
    assert answer.closing_delimiter
    assert_valid_response(answer.body_child)
    return answer


@pytest.mark.xcai(9, 12, 13, 35, 36)
async def test_every_source_outcome_becomes_a_document_or_its_registry_error(
    source: FaultUpstream, tmp_path: Path
) -> None:
    async with running_gateway(
        {"faulty": [source.base_url + "scripted/"]}, settings=settings(tmp_path)
    ) as gateway:
        answer = await rad75(gateway, [doc(sop) for sop in SCRIPTS])
    assert answer.status == PARTIAL_SUCCESS
    returned = {d.document_uid: d.content for d in answer.documents}
    assert returned == {"1.9.1": INSTANCE, "1.9.2": EDGY, "1.9.3": INSTANCE}  # byte for byte
    found = {}
    for error in answer.errors:
        sop = next(s for s in EXPECTED if f"Document {s} " in error.context)
        found[sop] = error
        assert error.location == f"urn:oid:{OWN}"
    assert set(found) == set(EXPECTED)
    for sop, (code, words) in EXPECTED.items():
        assert found[sop].code == code, sop
        assert words in found[sop].context, (sop, found[sop].context)
    assert all("stack trace" not in e.context and "login" not in e.context for e in answer.errors)
    # one GET per document, each asking for the one syntax requested
    assert sorted(p.rsplit("/", 1)[1] for p in source.paths) == sorted(SCRIPTS)
    assert {h["accept"] for h in source.request_headers} == {
        f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}'
    }


@pytest.mark.xcai(35)
async def test_ids_that_are_not_uids_never_reach_a_url(
    source: FaultUpstream, tmp_path: Path
) -> None:
    hostile = [
        doc("1.9.1/../../admin"),
        doc("1.9.1?x=1"),
        doc("1.9.1", series="1.2.3/../4"),
        doc("1.9.1", study="%2e%2e"),
    ]
    async with running_gateway(
        {"faulty": [source.base_url + "scripted/"]}, settings=settings(tmp_path)
    ) as gateway:
        answer = await rad75(gateway, [*hostile, doc("1.9.1")])
    assert [d.document_uid for d in answer.documents] == ["1.9.1"]
    assert [e.code for e in answer.errors] == ["XDSDocumentUniqueIdError"] * len(hostile)
    assert len(source.paths) == 1


@pytest.mark.xcai(37)
async def test_a_full_spool_reports_the_rest_as_out_of_resources(
    source: FaultUpstream, tmp_path: Path
) -> None:
    size = len(INSTANCE)
    spool = settings(tmp_path, max_request_bytes=2 * size + size // 2)
    spool = ServerSettings(xca=XcaSettings(concurrency=1, spool=spool.xca.spool))
    async with running_gateway(
        {"faulty": [source.base_url + "scripted/"]}, settings=spool
    ) as gateway:
        answer = await rad75(gateway, [doc("1.9.1"), doc("1.9.3"), doc("1.9.1"), doc("1.9.3")])
    assert answer.status == PARTIAL_SUCCESS
    assert len(answer.documents) == 2
    assert [e.code for e in answer.errors] == ["XDSRepositoryOutOfResources"] * 2
    assert len(source.paths) == 3  # the fourth was never asked for
