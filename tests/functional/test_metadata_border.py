"""Metadata at the border (issue 16, item 3): what a consumer receives names no source address
in any spelling, and every link in it can be followed through the gateways.

Two sources: the session's real Orthanc (plain absolute URLs, built from the Host it is sent)
and :class:`peers.spelling.SpellingSource`, a scripted source that spells its address every
way DICOM JSON and XML allow — the only way to get such documents, as Orthanc never writes
them. Both are reached through two gateway processes (initiating → responding → source).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pydicom
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from peers.chain import COMMUNITY_A, RLUID, chain_configs
from peers.gateway import GatewayProcess
from peers.multipart import split_multipart
from peers.spelling import SERIES, STUDY, SpellingSource, bulk_payload
from peers.studies import SyntheticStudy
from tests.functional.chain import Chain
from tests.functional.inprocess import running_gateway

JSON = "application/dicom+json"
XML = 'multipart/related; type="application/dicom+xml"'
SOURCE_HOST = b"localhost"


async def get(
    url: str, *, accept: str | None = None, host: str | None = None
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    headers = {}
    if accept:
        headers["Accept"] = accept
    if host:
        headers["Host"] = host
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, headers=headers) as answer,
    ):
        return answer.status, answer.headers, await answer.read()


@contextlib.asynccontextmanager
async def two_gateways(folder: Path, source_url: str) -> AsyncIterator[GatewayProcess]:
    """A responding gateway in front of ``source_url`` and an initiating one in front of it;
    yields the initiating gateway. Started in a thread: the source serves on this loop."""
    responding, initiating = chain_configs(source_url)
    with contextlib.ExitStack() as stack:
        await asyncio.to_thread(stack.enter_context, GatewayProcess(folder, responding, name="rig"))
        iig = await asyncio.to_thread(
            stack.enter_context, GatewayProcess(folder, initiating, name="iig")
        )
        yield iig


def series_url(iig: GatewayProcess, tail: str = "metadata") -> str:
    return (
        f"{iig.endpoint}homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/"
        f"studies/{STUDY}/series/{SERIES}/{tail}"
    )


def public_prefix(iig: GatewayProcess) -> str:
    """The responding gateway writes the homeCommunityId in its canonical form (no urn:oid:)."""
    hcid = COMMUNITY_A.removeprefix("urn:oid:")
    return f"{iig.endpoint}homeCommunityId/{hcid}/RetrieveLocationUID/{RLUID}/"


def hcid(iig: GatewayProcess) -> str:
    return COMMUNITY_A.removeprefix("urn:oid:")


def json_strings(value: Any) -> Iterator[str]:
    """Every string in a parsed JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from json_strings(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from json_strings(item)


def assert_no_source_address(headers: Any, body: bytes, strings: list[str]) -> None:
    assert SOURCE_HOST not in body.lower()
    for text in strings:
        assert "localhost" not in text.lower(), text
    for name, value in headers.items():
        assert "localhost" not in value.lower(), (name, value)


async def follow(uri: str, sop: str) -> None:
    status, headers, body = await get(uri)
    assert status == 200, uri
    (part,) = split_multipart(body, headers["Content-Type"])
    assert part.body == bulk_payload(sop)


async def test_escaped_and_relative_json_urls_through_two_gateway_processes(
    tmp_path: Path,
) -> None:
    async with SpellingSource() as source, two_gateways(tmp_path, source.base_url) as iig:
        status, headers, body = await get(series_url(iig), accept=JSON)
        assert status == 200
        document = json.loads(body)
        assert_no_source_address(headers, body, list(json_strings(document)))
        public = public_prefix(iig)
        assert len(document) == len(source.sops)
        for instance, sop in zip(document, source.sops, strict=True):
            assert instance["00080018"]["Value"] == [sop]
            bulk = f"{public}studies/{STUDY}/series/{SERIES}/instances/{sop}/bulk/7fe00010"
            assert instance["7FE00010"]["BulkDataURI"] == bulk
            assert instance["00081190"]["Value"] == [f"{public}studies/{STUDY}"]
            comment = instance["00324000"]["Value"][0]
            assert comment.endswith(' "quoted" café'), comment  # the rest of it untouched
            await follow(bulk, sop)
        assert headers["Content-Location"] == series_url(iig).replace(COMMUNITY_A, hcid(iig))


async def test_character_references_and_relative_xml_urls_through_two_gateway_processes(
    tmp_path: Path,
) -> None:
    async with SpellingSource() as source, two_gateways(tmp_path, source.base_url) as iig:
        status, headers, body = await get(series_url(iig), accept=XML)
        assert status == 200
        parts = split_multipart(body, headers["Content-Type"])
        assert len(parts) == len(source.sops)
        public = public_prefix(iig)
        strings: list[str] = []
        for part, sop in zip(parts, source.sops, strict=True):
            length = part.headers.get("content-length")
            assert length is None or int(length) == len(part.body)
            assert "content-location" not in part.headers
            root = ET.fromstring(part.body)
            for element in root.iter():
                strings += [element.text or "", *element.attrib.values()]
            ns = {"d": "http://dicom.nema.org/PS3.19/models/NativeDICOM"}
            bulk = root.find("d:DicomAttribute[@tag='7FE00010']/d:BulkData", ns)
            assert bulk is not None
            (uri,) = [v for k, v in bulk.attrib.items() if k.lower() == "uri"]
            expected = f"{public}studies/{STUDY}/series/{SERIES}/instances/{sop}/bulk/7fe00010"
            assert uri == expected
            retrieve = root.find("d:DicomAttribute[@tag='00081190']/d:Value", ns)
            assert retrieve is not None
            assert retrieve.text == f"{public}studies/{STUDY}"
            comment = root.find("d:DicomAttribute[@tag='00324000']/d:Value", ns)
            assert comment is not None
            assert comment.text == f"Prior at {public}studies/{STUDY} & more"
            await follow(uri, sop)
        assert_no_source_address(headers, body, strings)


async def test_source_headers_never_reach_the_consumer_with_its_address(
    tmp_path: Path,
) -> None:
    async with SpellingSource() as source, two_gateways(tmp_path, source.base_url) as iig:
        status, headers, _ = await get(series_url(iig), accept=JSON)
    assert status == 200
    assert_no_source_address(headers, b"", [])
    own = series_url(iig).replace(COMMUNITY_A, hcid(iig))
    assert headers["Content-Location"] == own
    links = headers.getall("Link", [])
    assert links, "the Link header is rewritten, not lost"
    assert f"<{own}>" in links[0]
    assert f"<{public_prefix(iig)}studies/{STUDY}>" in links[0]
    assert "X-Served-By" not in headers


async def test_host_without_port_gets_followable_links_from_orthanc(
    chain: Chain, study: SyntheticStudy
) -> None:
    """dicomweb-client sends ``Host: 127.0.0.1`` (no port): the links must still work."""
    series = study.series_uids[1]
    url = chain.via_gateways(f"studies/{study.study_uid}/series/{series}/metadata")
    status, _, body = await get(url, accept=JSON, host="127.0.0.1")
    assert status == 200
    assert chain.orthanc.url.encode() not in body
    assert chain.responding.url.encode() not in body
    metadata = json.loads(body)
    stored = {i.sop_instance_uid: i.part10 for i in study.of_series(series)}
    assert len(metadata) == len(stored)
    for instance in metadata:
        uri = instance["7FE00010"]["BulkDataURI"]
        assert uri.startswith(chain.initiating.endpoint + "homeCommunityId/"), uri
        via_status, via_headers, via_body = await get(uri)
        assert via_status == 200, uri
        (part,) = split_multipart(via_body, via_headers["Content-Type"])
        sop = instance["00080018"]["Value"][0]
        assert part.body == pydicom.dcmread(io.BytesIO(stored[sop])).PixelData


async def test_xml_metadata_from_orthanc_with_host_without_port(
    chain: Chain, study: SyntheticStudy
) -> None:
    series = study.series_uids[0]
    url = chain.via_gateways(f"studies/{study.study_uid}/series/{series}/metadata")
    status, headers, body = await get(url, accept=XML, host="127.0.0.1")
    assert status == 200
    assert b"127.0.0.1:" + str(chain.orthanc.port).encode() not in body
    parts = split_multipart(body, headers["Content-Type"])
    assert len(parts) == len(study.of_series(series))
    uris = re.findall(rb'<BulkData URI="([^"]+)"', body)
    assert len(uris) == len(parts)
    for part in parts:
        length = part.headers.get("content-length")
        assert length is None or int(length) == len(part.body)
    for uri in uris[:5]:
        status, _, _ = await get(uri.decode())
        assert status == 200


async def test_metadata_that_cannot_be_rewritten_safely_aborts_the_answer() -> None:
    """UTF-16 JSON (NUL bytes) would carry the source's address past any byte-level search:
    the relay is cut, never completed. A scripted source: Orthanc never sends UTF-16."""

    async def utf16(request: web.Request) -> web.Response:
        document = json.dumps([{"7FE00010": {"BulkDataURI": "http://127.0.0.1:1/x"}}])
        return web.Response(body=document.encode("utf-16"), content_type=JSON)

    app = web.Application()
    app.router.add_get("/dw/studies/{tail:.*}", utf16)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with (
            running_gateway({"utf16": [str(server.make_url("/dw/"))]}) as gw,
            aiohttp.ClientSession() as session,
            session.get(gw.url("utf16", "studies/1.2/metadata")) as answer,
        ):
            assert answer.status == 200  # the headers had gone before the body was read
            with pytest.raises(aiohttp.ClientPayloadError):
                await answer.read()
    finally:
        await server.close()
