"""CORS per route and manifests without a Content-Length (issue 16, item 4), over real sockets.

Every preflight below is a real HTTP ``OPTIONS`` exchange with an in-process gateway; the
manifest is a real MADO KOS built from synthetic instances, and the answer is the gateway's
own multipart re-framing of what the scripted source sent. The same exchange from a real
browser is in ``test_browser.py``.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edge.cors import check_preflight
from gateway.edge.hardening import read_limited
from gateway.edge.routes import MANIFEST_ROUTE, RETRIEVE_ROUTE, RoutePolicy
from gateway.errors import BodyTooLarge, CorsRefused
from gateway.settings import CorsPolicy
from mado.create import SeriesLocation, build_manifest
from mado.load import write_path
from peers.faults import MULTIPART
from peers.multipart import split_multipart
from peers.studies import make_study
from routing.ids import Oid
from routing.model import origin_of
from tests.security.harness import OWN, Scripted, gateway

VIEWER = "https://viewer.example.org"
CORS = {"cors": {"allowed_origins": [VIEWER]}}
DICOM = "application/dicom"


def kos_manifest(rluid: str, tmp_path: object) -> bytes:
    """A MADO KOS manifest of a 2-series study whose series live at ``rluid``."""
    study = make_study(seed="cors", series_count=2, instances_per_series=2, rows=2, columns=2)
    datasets = [pydicom.dcmread(io.BytesIO(i.part10)) for i in study.instances]
    manifest = build_manifest(datasets, SeriesLocation(retrieve_location_uid=Oid(rluid)))
    path = f"{tmp_path}/manifest.dcm"
    write_path(manifest, path, "kos")
    with open(path, "rb") as file:
        return file.read()


async def preflight(
    session: aiohttp.ClientSession, url: str, method: str, headers: str = "", origin: str = VIEWER
) -> tuple[int, dict[str, str], bytes]:
    sent = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    async with session.options(url, headers=sent) as answer:
        return answer.status, dict(answer.headers), await answer.read()


async def test_preflights_are_answered_per_route_and_refusals_say_why() -> None:
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, server=CORS) as gw,
        aiohttp.ClientSession() as session,
    ):
        manifest_url = gw.raw("/mado/retrieve")
        status, headers, _ = await preflight(
            session, manifest_url, "POST", "content-type, authorization"
        )
        assert status == 204
        assert headers["Access-Control-Allow-Origin"] == VIEWER
        assert headers["Access-Control-Allow-Methods"] == "POST"
        allowed = {h.strip().lower() for h in headers["Access-Control-Allow-Headers"].split(",")}
        assert {"content-type", "authorization"} <= allowed

        status, headers, _ = await preflight(session, gw.url("ok"), "GET", "authorization, range")
        assert status == 204
        assert headers["Access-Control-Allow-Methods"] == "GET"

        # A method the route does not take: the problem says so, not "origin not allowed".
        for url, method, takes in (
            (gw.url("ok"), "POST", "GET"),
            (manifest_url, "GET", "POST"),
            (manifest_url, "DELETE", "POST"),
        ):
            status, _, body = await preflight(session, url, method)
            problem = json.loads(body)
            assert status == 403, (url, method)
            assert problem["type"] == "urn:mado-gateway:problem:cors-method-refused"
            assert method in problem["detail"] and takes in problem["detail"]
            assert "origin" not in problem["detail"]

        # A request header the gateway does not accept from a page: named in the problem.
        status, _, body = await preflight(session, manifest_url, "POST", "content-type, x-secret")
        problem = json.loads(body)
        assert status == 403
        assert problem["type"] == "urn:mado-gateway:problem:cors-headers-refused"
        assert "x-secret" in problem["detail"]

        # Another page's origin: that refusal, and only it, speaks of the origin.
        status, headers, body = await preflight(
            session, manifest_url, "POST", origin="https://evil.example"
        )
        problem = json.loads(body)
        assert status == 403
        assert problem["type"] == "urn:mado-gateway:problem:cors-origin-refused"
        assert "Access-Control-Allow-Origin" not in headers
        assert gw.metric("mado_gateway_inbound_refusals_total", reason="cors-method-refused") == 3
    assert up.seen == []


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_browser_style_post_and_a_chunked_manifest_are_served(tmp_path: object) -> None:
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, server=CORS) as gw,
        aiohttp.ClientSession() as session,
    ):
        manifest = kos_manifest(gw.rluids["ok"], tmp_path)
        url = gw.raw(f"/mado/retrieve?homeCommunityId={OWN}")
        expected = sorted(p.body for p in split_multipart(up.body, MULTIPART))

        # With Content-Length, from a page: the answer carries the CORS headers.
        async with session.post(
            url, data=manifest, headers={"Origin": VIEWER, "Content-Type": DICOM}
        ) as answer:
            body = await answer.read()
            assert answer.status == 200, body
            assert answer.headers["Access-Control-Allow-Origin"] == VIEWER
            assert "Content-Type" in answer.headers["Access-Control-Expose-Headers"]
            parts = split_multipart(body, answer.headers["Content-Type"])
            assert sorted(p.body for p in parts) == expected  # one location: one study request

        # Chunked (no Content-Length), as a streaming client sends it: accepted.
        async with session.post(
            url, data=chunks(manifest), headers={"Content-Type": DICOM}
        ) as answer:
            assert answer.request_info.headers.get("Transfer-Encoding") == "chunked"
            body = await answer.read()
            assert answer.status == 200, body
            parts = split_multipart(body, answer.headers["Content-Type"])
            assert sorted(p.body for p in parts) == expected
    assert len(up.seen) == 2


async def test_the_manifest_limit_holds_with_and_without_content_length(tmp_path: object) -> None:
    server = {**CORS, "limits": {"max_manifest_bytes": 4096}}
    async with (
        Scripted() as up,
        gateway({"ok": {"base_urls": [up.url + "ok/"]}}, server=server) as gw,
        aiohttp.ClientSession() as session,
    ):
        manifest = kos_manifest(gw.rluids["ok"], tmp_path)
        assert len(manifest) > 4096
        url = gw.raw(f"/mado/retrieve?homeCommunityId={OWN}")
        for data in (manifest, chunks(manifest)):
            async with session.post(url, data=data, headers={"Content-Type": DICOM}) as answer:
                problem = json.loads(await answer.read())
                assert answer.status == 413
                assert problem["type"] == "urn:mado-gateway:problem:request-body-too-large"
                assert "4096" in problem["detail"]
        # Retrieve requests still take no body, chunked or not.
        for data in (b"x", chunks(b"xyz")):
            async with session.get(gw.url("ok"), data=data) as answer:
                problem = json.loads(await answer.read())
                assert answer.status == 413
                assert problem["type"] == "urn:mado-gateway:problem:request-body-not-allowed"
        refused = gw.metric("mado_gateway_inbound_refusals_total", reason="request-body-too-large")
        assert refused == 2
    assert up.seen == []


# -- the preflight decision as a pure policy ------------------------------------------------

ROUTES = (RETRIEVE_ROUTE, MANIFEST_ROUTE)
METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "get", "Post")
HEADERS = ("content-type", "authorization", "range", "accept", "x-secret", "cookie", "Accept")
ORIGINS = (VIEWER, "https://evil.example", "null", "http://viewer.example.org", "garbage")


@settings(max_examples=300, deadline=None)
@given(
    route=st.sampled_from(ROUTES),
    origin=st.sampled_from(ORIGINS),
    method=st.sampled_from(METHODS),
    requested=st.lists(st.sampled_from(HEADERS), max_size=4),
    star=st.booleans(),
)
def test_preflight_policy(
    route: RoutePolicy, origin: str, method: str, requested: list[str], star: bool
) -> None:
    """The decision equals its specification, in the order origin → method → headers."""
    cors = CorsPolicy(allowed_origins=frozenset({"*"} if star else {origin_of(VIEWER)}))
    allowed_headers = {h.lower() for h in route.request_headers}
    bad = [h for h in requested if h.lower() not in allowed_headers]
    refusal, named = None, ""
    if not (star or origin == VIEWER):
        refusal = "cors-origin-refused"
    elif method not in route.methods:
        refusal, named = "cors-method-refused", method
    elif bad:
        refusal, named = "cors-headers-refused", bad[0]
    if refusal is not None:
        with pytest.raises(CorsRefused) as caught:
            check_preflight(route, cors, origin, method, ", ".join(requested))
        assert caught.value.slug == refusal
        assert named in str(caught.value)
        return
    answer = check_preflight(route, cors, origin, method, ", ".join(requested))
    assert answer["Access-Control-Allow-Origin"] == origin
    assert answer["Access-Control-Allow-Methods"] == ", ".join(route.methods)


def test_body_too_large_names_the_limit() -> None:
    assert "2048" in str(BodyTooLarge(2048))
    assert BodyTooLarge(2048).status == 413


@pytest.mark.parametrize("route", ROUTES)
def test_route_policies_state_their_methods(route: RoutePolicy) -> None:
    assert route.methods
    assert all(m == m.upper() for m in route.methods)


class _Chunks:
    """A body as the socket delivers it: the given chunks, then the end (b"")."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)

    async def readany(self) -> bytes:
        return self._chunks.pop(0) if self._chunks else b""


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=1, max_size=300), max_size=20),
    limit=st.integers(min_value=0, max_value=3000),
)
async def test_read_limited_reads_everything_up_to_the_limit_and_nothing_past_it(
    pieces: list[bytes], limit: int
) -> None:
    body = _Chunks(pieces)
    total = b"".join(pieces)
    if len(total) <= limit:
        assert await read_limited(body, limit) == total
        return
    with pytest.raises(BodyTooLarge):
        await read_limited(body, limit)
    # it stopped at the first chunk that crossed the limit
    crossed = next(i for i in range(len(pieces)) if len(b"".join(pieces[: i + 1])) > limit)
    assert body._chunks == pieces[crossed + 1 :]
