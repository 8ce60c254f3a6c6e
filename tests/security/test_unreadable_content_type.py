"""An upstream answer whose Content-Type is not a media type is never relayed (issue 8,
item 5): the gateway cannot tell whether it is metadata to rewrite or multipart to check,
so relaying it could hand the source's own address across the border."""

from __future__ import annotations

import pytest

from peers.faults import FaultUpstream, Script
from tests.functional.inprocess import running_gateway
from tests.functional.received import receive

UNREADABLE = [
    "application/dicom+json, text/plain",
    'application/dicom+json; charset="utf-8',
    "application/dicom+json; charset",
    "application/dicom+json\x01",
]


@pytest.mark.parametrize("content_type", UNREADABLE)
async def test_an_unreadable_content_type_is_a_502_and_leaks_nothing(content_type: str) -> None:
    async with FaultUpstream() as up:
        base = up.base_url + "scripted/"
        study = "1.2.826.0.1.3680043.10.88.1"
        body = b'[{"00081190": {"vr": "UR", "Value": ["%sstudies/%s"]}}]' % (
            base.encode(),
            study.encode(),
        )
        up.scripts[study] = Script(headers={"Content-Type": content_type}, body=body)
        async with running_gateway({"scripted": [base]}) as gw:
            got = await receive(gw.url("scripted", f"studies/{study}/metadata"), deadline_s=10)
    assert got.status == 502, got
    assert up.base_url.encode() not in got.body
    assert b"127.0.0.1" not in got.body
