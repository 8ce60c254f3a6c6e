"""``POST /mado/retrieve`` and ``fetch`` against a faulted source: every retrieval completes
or aborts within ``read_idle_s`` of its last byte, whatever the HTTP parser does (issue 16,
classes 13 and 14, for the manifest routes as for the relay).

The scripted upstream (peers.faults) is a fake on purpose: no real source sends a malformed
chunk-size line or resets a close-delimited body on demand.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import orjson
import pytest

from gateway.consumer import RetrieveFailed
from gateway.consumer.fetch import DirectorySink, fetch_all
from peers.faults import MULTIPART, FaultUpstream, Script, multipart_body
from tests.functional.inprocess import running_gateway

STUDY = "1.2.826.0.1.3680043.10.99.1"
READ_IDLE_S = 1.0
RLUID_EXTENSION = (
    "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoRetrieveLocationUIDExtension"
)


def _manifest(rluid: str) -> bytes:
    """A FHIR manifest naming one series of one instance at ``rluid``."""
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "document",
            "entry": [
                {
                    "fullUrl": "urn:Endpoint/e",
                    "resource": {
                        "resourceType": "Endpoint",
                        "id": "e",
                        "connectionType": {"code": "dicom-wado-rs"},
                        "address": "http://notspecified",
                        "extension": [{"url": RLUID_EXTENSION, "valueString": rluid}],
                    },
                },
                {
                    "fullUrl": "urn:ImagingStudy/s",
                    "resource": {
                        "resourceType": "ImagingStudy",
                        "id": "s",
                        "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY}"}],
                        "series": [
                            {
                                "uid": STUDY + ".1",
                                "endpoint": [{"reference": "urn:Endpoint/e"}],
                                "instance": [
                                    {
                                        "uid": STUDY + ".1.1",
                                        "sopClass": {"code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                                    }
                                ],
                            }
                        ],
                    },
                },
            ],
        }
    )


BODY = multipart_body([b"\x00" * 2000] * 2)
FAULTS = [
    pytest.param(
        Script(framing="chunked", fault="bad-chunk-close", offset=300, headers={"Content-Type": MULTIPART}),
        id="malformed-chunk-then-close",
    ),
    pytest.param(
        Script(framing="chunked", fault="bad-chunk", offset=300, headers={"Content-Type": MULTIPART}),
        id="malformed-chunk-then-stall",
    ),
    pytest.param(
        Script(framing="close", fault="stall", offset=300, headers={"Content-Type": MULTIPART}),
        id="stall",
    ),
]


@pytest.mark.parametrize("script", FAULTS)
async def test_post_manifest_aborts_within_read_idle(script: Script) -> None:
    async with FaultUpstream(stall_s=30) as up:
        up.scripts["faulted"] = replace(script, body=BODY)
        async with running_gateway({"faulted": [up.base_url + "scripted/faulted/"]}, read_idle_s=READ_IDLE_S) as gw:
            url = str(gw.server.make_url("/mado/retrieve"))
            started = time.monotonic()
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    url,
                    data=_manifest(gw.rluids["faulted"]),
                    headers={"Content-Type": "application/fhir+json"},
                    timeout=aiohttp.ClientTimeout(total=15),
                ) as answer,
            ):
                assert answer.status == 200  # the first part went out: an abort now
                with pytest.raises(aiohttp.ClientPayloadError):
                    await answer.read()
            assert time.monotonic() - started < READ_IDLE_S + 3


@pytest.mark.parametrize("script", FAULTS)
async def test_fetch_fails_within_read_idle(script: Script, tmp_path: Path) -> None:
    async with FaultUpstream(stall_s=30) as up:
        up.scripts["faulted"] = replace(script, body=BODY)
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            report = await asyncio.wait_for(
                fetch_all(
                    [up.base_url + f"scripted/faulted/studies/{STUDY}"],
                    DirectorySink(tmp_path),
                    session=session,
                    read_idle_s=READ_IDLE_S,
                ),
                timeout=15,
            )
        assert report.failures and all(isinstance(f, RetrieveFailed) for f in report.failures)
        assert time.monotonic() - started < READ_IDLE_S + 3
        assert not [p for p in os.listdir(tmp_path) if p.endswith(".dcm")]

