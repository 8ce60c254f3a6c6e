"""An upstream's MTOM answer read however the network cuts it (hypothesis): parts before or
after the root, binary or base64, bytes that look like delimiters, CR/LF at part edges — every
document comes out byte-exact and the leg ends complete, whatever the chunk boundaries.

No socket here: the body is fed to an ``aiohttp.StreamReader`` in chunks of the drawn sizes,
so the property covers the reading logic of :mod:`gateway.protocols.xca.answerstream` and
:func:`gateway.protocols.xca.client` between the envelope and the last part. The same paths
over real sockets are in ``test_xca_client.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
from aiohttp.base_protocol import BaseProtocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.exchange import Exchange, StreamEnd
from gateway.protocols.xca.answerstream import AnswerStream
from gateway.protocols.xca.client import _answer
from gateway.protocols.xca.model import RetrieveRequest
from gateway.protocols.xca.plan import Role, plan
from gateway.protocols.xca.spool import Spool
from gateway.settings import XcaSettings
from routing.ids import HomeCommunityId
from routing.loader import parse_config
from routing.registry import Registry
from tests.functional.soapclient import (
    EXPLICIT_LE,
    RAD75_RESPONSE,
    SUCCESS,
    Part,
    Returned,
    mtom_package,
    rad_response,
)
from tests.unit.xca_client_harness import OWN, REMOTE, REPOSITORY, documents

REGISTRY = Registry(
    parse_config(
        {
            "self": {"home_community_id": OWN, "audit_source_id": "t"},
            "upstreams": {"rig": {"protocol": "rad-75", "base_urls": ["http://127.0.0.1:9/x"]}},
            "communities": {REMOTE: "rig"},
        }
    )
)
BOUNDARY = "MIMEBoundary_0123456789abcdef"
tricky = st.sampled_from(
    [b"\r\n", b"\r\n--", f"\r\n--{BOUNDARY}".encode()[:-1], b"--" + BOUNDARY.encode()[:5], b"\n"]
)
# A part may come close to the delimiter but never hold it: a writer picks a boundary its
# contents do not contain (RFC 2046 §5.1.1), and no reader can split such a package.
content = (
    st.lists(st.binary(max_size=300) | tricky, max_size=8)
    .map(b"".join)
    .filter(lambda data: b"\r\n--" + BOUNDARY.encode() not in data)
)


class _Connected(BaseProtocol):
    """A protocol that says it is connected: the reader is fed by the test, not a socket."""

    @property
    def connected(self) -> bool:
        return True


async def _read(body: bytes, content_type: str, cuts: list[int], tmp: Path, count: int) -> Any:
    loop = asyncio.get_running_loop()
    reader = aiohttp.StreamReader(_Connected(loop), 1 << 16, loop=loop)
    answer = SimpleNamespace(
        content=reader, headers={"Content-Type": content_type}, status=200, release=lambda: None
    )
    uids = [f"1.2.3.{n}" for n in range(count)]
    group = plan(
        RetrieveRequest(
            documents=tuple(documents(uids, hcid=f"urn:oid:{REMOTE}")),
            transfer_syntaxes=(EXPLICIT_LE,),
        ),
        REGISTRY,
        Role.INITIATING,
    ).groups[0]
    exchange = Exchange(request_id="t", method="POST", path="/xcai", client=None)
    leg = exchange.open_leg("rig")

    async def feed() -> None:
        start = 0
        for cut in [*sorted(cuts), len(body)]:
            if cut > start:
                reader.feed_data(body[start:cut])
                start = cut
                await asyncio.sleep(0)
        reader.feed_eof()

    feeding = asyncio.ensure_future(feed())
    spool = Spool(tmp, max_bytes=1 << 24, max_request_bytes=1 << 24)
    with spool.request() as budget:
        stream = AnswerStream(
            cast(aiohttp.ClientResponse, answer), idle_s=5, leg=leg, exchange=exchange, base="x"
        )
        group_answer = await _answer(
            cast(aiohttp.ClientResponse, answer),
            stream,
            held=contextlib.AsyncExitStack(),
            group=group,
            settings=XcaSettings(),
            budget=budget,
            own=HomeCommunityId(OWN),
            responding=False,
        )
        by_cid = {d.content_id: d.document_uid for d in group_answer.documents}
        got = {}
        async for part in group_answer.parts:
            got[by_cid[part.content_id]] = b"".join([chunk async for chunk in part.chunks])
        await group_answer.close()
        assert budget.used_bytes == 0
    await feeding
    return got, leg


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    contents=st.lists(content, min_size=1, max_size=4),
    data=st.data(),
)
def test_any_chunking_of_any_package_gives_the_same_bytes(
    contents: list[bytes], data: st.DataObject, tmp_path: Path
) -> None:
    count = len(contents)
    uids = [f"1.2.3.{n}" for n in range(count)]
    encodings = data.draw(
        st.lists(st.sampled_from(["binary", "base64", None]), min_size=count, max_size=count)
    )
    root_index = data.draw(st.integers(0, count))
    cids = [f"d{n}@peer/{'%' if n % 2 else '+'}" for n in range(count)]
    envelope = rad_response(
        status=SUCCESS,
        action=RAD75_RESPONSE,
        documents=[
            Returned(
                home_community_id=f"urn:oid:{REMOTE}",
                repository_id=REPOSITORY,
                document_uid=uid,
                content=body,
                content_id=cid,
            )
            for uid, body, cid in zip(uids, contents, cids, strict=True)
        ],
    )
    parts = [
        Part(content_id=cid, content=body, transfer_encoding=encoding)
        for cid, body, encoding in zip(cids, contents, encodings, strict=True)
    ]
    content_type, body = mtom_package(
        envelope, action=None, parts=parts, root_index=root_index, boundary=BOUNDARY
    )
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=40))
    got, leg = asyncio.run(_read(body, content_type, cuts, tmp_path, count))
    assert got == dict(zip(uids, contents, strict=True))
    assert leg.end is StreamEnd.COMPLETE
    assert leg.bytes == len(body)
