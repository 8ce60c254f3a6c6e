"""The streaming forwarder against a fault-injecting upstream (peers.faults), over loopback.

Each test uses real sockets end to end: client → in-process gateway → scripted upstream.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import orjson
import pytest

from gateway.sinks.logs import JsonFormatter
from peers.faults import BOUNDARY, MULTIPART, Fault, FaultUpstream, Framing, Script, multipart_body
from peers.net import free_port
from tests.functional.inprocess import STUDY, Running, running_gateway
from tests.functional.received import Received, receive

DEAD = f"http://127.0.0.1:{free_port()}/"  # nothing listens here


async def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url, headers=headers) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.read()


@pytest.mark.checklist(19, 20)
async def test_bytes_pass_through_unchanged_with_headers_and_accept() -> None:
    async with FaultUpstream() as up, running_gateway({"ok": [up.base_url + "ok/"]}) as gw:
        accept = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'
        status, headers, body = await fetch(
            gw.url("ok"), Accept=accept, Authorization="Bearer t", Cookie="c=1"
        )
    assert status == 200
    assert body == up.body
    assert headers["Content-Type"].endswith("boundary=fault-boundary-7d1f")
    # Always chunked: the terminating chunk, sent after the audit record, says "complete".
    assert headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in headers
    assert "X-Request-ID" not in headers or headers["X-Request-ID"]
    sent = up.request_headers[0]
    assert up.paths == ["/ok/studies/1.2.826.0.1.3680043.10.99.1"]
    assert sent["accept"] == accept
    assert sent["accept-encoding"] == "identity"
    assert "authorization" not in sent
    assert "cookie" not in sent
    assert gw.metric("mado_gateway_relayed_bytes_total", route="source", upstream="ok") == len(
        up.body
    )


async def test_close_delimited_body_is_relayed_chunked_and_complete() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"close-delimited": [up.base_url + "close-delimited/"]}) as gw,
    ):
        status, headers, body = await fetch(gw.url("close-delimited"))
    assert status == 200
    assert headers.get("Transfer-Encoding") == "chunked"
    assert body == up.body


async def assert_aborted(url: str) -> bytes:
    """The client must see a broken transfer, never a clean end."""
    received = bytearray()

    async def drain(answer: aiohttp.ClientResponse) -> None:
        async for chunk in answer.content.iter_any():
            received.extend(chunk)

    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        assert answer.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await drain(answer)
    return bytes(received)


async def test_reset_in_mid_body_aborts_the_client_connection() -> None:
    async with FaultUpstream() as up, running_gateway({"reset": [up.base_url + "reset/"]}) as gw:
        received = await assert_aborted(gw.url("reset"))
        await asyncio.sleep(0.05)
        assert up.body.startswith(received)
        assert len(received) < len(up.body)
        assert gw.metric("mado_gateway_stream_aborts_total", route="source", cause="upstream") == 1
        # and the gateway keeps serving
        async with FaultUpstream() as ok, running_gateway({"ok": [ok.base_url + "ok/"]}) as gw2:
            assert (await fetch(gw2.url("ok")))[0] == 200


async def test_close_delimited_truncation_is_detected_by_the_missing_boundary() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"truncated": [up.base_url + "truncated/"]}) as gw,
    ):
        received = await assert_aborted(gw.url("truncated"))
    assert received == up.body[: len(up.body) // 2]


async def test_stall_before_headers_is_a_504_problem() -> None:
    async with (
        FaultUpstream(stall_s=5) as up,
        running_gateway({"stall-headers": [up.base_url + "stall-headers/"]}, read_idle_s=0.5) as gw,
    ):
        status, headers, body = await fetch(gw.url("stall-headers"))
        assert status == 504
        assert headers["Content-Type"] == "application/problem+json"
        assert b"upstream-timeout" in body
        assert (
            gw.metric(
                "mado_gateway_requests_total", route="source", resource="instances", status="504"
            )
            == 1
        )


async def test_stall_in_mid_body_aborts_after_the_idle_timeout() -> None:
    async with (
        FaultUpstream(stall_s=5) as up,
        running_gateway({"stall-body": [up.base_url + "stall-body/"]}, read_idle_s=0.5) as gw,
    ):
        started = asyncio.get_running_loop().time()
        received = await assert_aborted(gw.url("stall-body"))
        elapsed = asyncio.get_running_loop().time() - started
    assert received == up.body[:1000]
    assert 0.4 < elapsed < 3


async def test_dead_first_base_url_fails_over_to_the_next() -> None:
    async with FaultUpstream() as up, running_gateway({"ok": [DEAD, up.base_url + "ok/"]}) as gw:
        status, _, body = await fetch(gw.url("ok"))
        assert status == 200
        assert body == up.body
        assert gw.metric("mado_gateway_upstream_errors_total", upstream="ok", reason="connect") == 1


async def test_all_base_urls_dead_is_a_502_problem() -> None:
    async with running_gateway({"dead": [DEAD, DEAD.replace("/", "/", 1)]}) as gw:
        status, headers, body = await fetch(gw.url("dead"))
    assert status == 502
    assert headers["Content-Type"] == "application/problem+json"
    assert b"upstream-unavailable" in body


@pytest.mark.checklist(21)
@pytest.mark.parametrize("code", ["404", "406", "410"])
async def test_error_statuses_and_warnings_are_relayed_but_not_the_body(code: str) -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"status": [up.base_url + f"status/{code}/"]}) as gw,
    ):
        status, headers, body = await fetch(gw.url("status"))
    assert status == int(code)
    assert headers["Warning"] == f"299 upstream: status {code}"
    assert headers["Content-Type"] == "application/problem+json"
    assert b"internal upstream detail" not in body


async def test_upstream_500_is_502_and_503_fails_over() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway(
            {
                "s500": [up.base_url + "status/500/"],
                "s503": [up.base_url + "status/503/", up.base_url + "ok/"],
            }
        ) as gw,
    ):
        assert (await fetch(gw.url("s500")))[0] == 502
        status, _, body = await fetch(gw.url("s503"))
        assert (status, body) == (200, up.body)


async def test_redirect_is_not_followed_without_a_policy() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"status": [up.base_url + "status/302/"]}) as gw,
    ):
        status, headers, body = await fetch(gw.url("status"))
    assert status == 502
    assert "Location" not in headers
    assert b"redirect-refused" in body


@pytest.mark.checklist(21)
async def test_partial_content_is_relayed_with_its_body() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"partial": [up.base_url + "partial/"]}) as gw,
    ):
        status, headers, body = await fetch(gw.url("partial"))
    assert status == 206
    assert headers["Warning"] == "299 upstream: 2 instances not available"
    assert body == up.body


async def test_metadata_urls_are_rewritten_to_the_gateway() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"metadata": [up.base_url + "metadata/"]}) as gw,
    ):
        status, headers, body = await fetch(gw.url("metadata", "studies/1.2/metadata"))
        public = (
            str(gw.server.make_url("/wado/"))
            + "homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3.1/"
        )
    assert status == 200
    assert "Content-Length" not in headers  # the length changed; relayed chunked
    assert up.base_url.encode() not in body
    assert f"{public}studies/1.2/series/1.3/instances/1.4/bulk/7fe00010".encode() in body
    assert f'"{public}studies/1.2"'.encode() in body


@pytest.mark.parametrize(
    "tail",
    [
        "studies/1.2.03",
        "studies/1.2/series/x",
        "studies/1.2/../../etc/passwd",
        "studies/1.2/%2e%2e/admin",
        "studies/" + "1" * 65,
    ],
)
async def test_invalid_request_is_400_and_the_upstream_sees_nothing(tail: str) -> None:
    async with FaultUpstream() as up, running_gateway({"ok": [up.base_url + "ok/"]}) as gw:
        url = (
            str(gw.server.make_url("/wado/homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3.1/"))
            + tail
        )
        status, headers, _ = await fetch(url)
        assert status in (400, 404)
        assert headers["Content-Type"] == "application/problem+json"
        assert up.connections == 0
        # the next legitimate request is served
        assert (await fetch(gw.url("ok")))[0] == 200


async def test_client_that_disconnects_cancels_the_upstream_request() -> None:
    block = bytes(1024 * 1024)
    async with (
        FaultUpstream(big_block=block, big_blocks=2000) as up,
        running_gateway({"big": [up.base_url + "big/"]}) as gw,
    ):
        async with aiohttp.ClientSession() as session, session.get(gw.url("big")) as answer:
            await answer.content.readexactly(5 * len(block))
        # The client is gone; the gateway must stop pulling from the upstream.
        await asyncio.sleep(0.5)
        assert gw.metric("mado_gateway_stream_aborts_total", route="source", cause="client") == 1
        assert gw.metric("mado_gateway_in_flight_requests") == 0


# --- issue 16: how an upstream body ends --------------------------------------------------

IDLE_S = 0.5
JSON = "application/dicom+json"


def uid(n: int) -> str:
    return f"1.2.826.0.1.3680043.10.99.{n}"


async def scripted(up: FaultUpstream, gw: Running, n: int, script: Script) -> Received:
    up.scripts[uid(n)] = script
    return await receive(gw.url("scripted", f"studies/{uid(n)}"), deadline_s=IDLE_S + 8)


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
async def test_a_boundary_lookalike_without_crlf_is_not_a_closing_delimiter(
    framing: Framing,
) -> None:
    # RFC 2046 §5.1.1: "--b--" closes the body only after a CRLF; inside a part it is data.
    payload = b"DICM and a line that reads x--" + BOUNDARY.encode() + b"--"
    body = multipart_body([payload, b"second part"])
    cut = body.index(payload) + len(payload)
    async with (
        FaultUpstream() as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        script = Script(
            headers={"Content-Type": MULTIPART},
            body=body,
            framing=framing,
            offset=cut,
            fault="last-chunk" if framing == "chunked" else "close",
        )
        if framing == "length":  # a Content-Length that ends right after the look-alike
            script = Script(headers={"Content-Type": MULTIPART}, body=body[:cut], framing=framing)
        got = await scripted(up, gw, 1, script)
    assert got.status == 200
    assert got.body == body[:cut]
    assert got.ending == "aborted"


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"',  # no boundary at all
        'multipart/related; type="application/dicom"; boundary=""',
        'multipart/related; type="application/dicom"; boundary=' + "b" * 71,
        'multipart/related; type="application/dicom"; boundary="ab@cd"',
        'multipart/related; type="application/dicom"; boundary="ends with space "',
        'multipart/related; boundary=one; type="application/dicom"; boundary=two',
        'multipart/related; type="application/dicom;boundary=hidden"',
        "multipart/mixed",
    ],
)
async def test_a_multipart_answer_without_a_usable_boundary_is_refused_before_any_byte(
    content_type: str,
) -> None:
    body = multipart_body([b"PAYLOAD-7f3a"], boundary="hidden")
    async with (
        FaultUpstream() as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        got = await scripted(
            up,
            gw,
            2,
            Script(
                headers={"Content-Type": content_type},
                body=body,
                fault="close",
                offset=len(body) // 2,
            ),
        )
    assert got.status == 502
    assert got.content_type == "application/problem+json"
    assert b"upstream-protocol" in got.body
    assert b"PAYLOAD-7f3a" not in got.body


@pytest.mark.parametrize("offset", [0, 40, None])
@pytest.mark.parametrize("content_type", [JSON, "image/jpeg", MULTIPART])
async def test_a_reset_never_ends_a_close_delimited_body(
    content_type: str, offset: int | None
) -> None:
    body = multipart_body([b"x" * 300]) if content_type == MULTIPART else b"[" + b" " * 300 + b"]"
    async with (
        FaultUpstream() as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        got = await scripted(
            up,
            gw,
            3,
            Script(
                headers={"Content-Type": content_type},
                body=body,
                framing="close",
                fault="reset",
                offset=len(body) if offset is None else offset,
            ),
        )
    assert got.status == 200
    assert got.ending == "aborted"
    assert body.startswith(got.body)


@pytest.mark.parametrize("fault", ["bad-chunk", "bad-chunk-close"])
@pytest.mark.parametrize("bad_size", [b"zz", b"-1", b"1" * 25, b"1x", b" 5", b"5;\x00"])
async def test_a_malformed_chunk_size_aborts_within_read_idle(
    bad_size: bytes, fault: Fault
) -> None:
    body = b"\xff\xd8" + bytes(range(256)) * 8
    async with (
        FaultUpstream(stall_s=6) as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        got = await scripted(
            up,
            gw,
            4,
            Script(
                headers={"Content-Type": "image/jpeg"},
                body=body,
                framing="chunked",
                fault=fault,
                offset=600,
                bad_size=bad_size,
            ),
        )
    assert got.status == 200
    assert got.ending == "aborted"
    assert got.body == body[:600]
    assert got.wait_s < IDLE_S + 1.0


async def test_a_304_that_announces_a_body_does_not_poison_the_pooled_connection() -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"keepalive-304": [up.base_url + "keepalive-304/"]}) as gw,
    ):
        first = await receive(gw.url("keepalive-304"), deadline_s=5, **{"If-None-Match": '"v1"'})
        await asyncio.sleep(0.2)  # the announced "body" arrives on the idle pooled connection
        second = await receive(gw.url("keepalive-304"), deadline_s=5)
    assert first.status == 304
    assert first.body == b""
    assert first.complete
    assert second.body != b"SMUGGLED"
    # The 304's connection was not reused: the second request had one of its own.
    assert (second.status, second.body) == (304, b"")
    assert (up.connections, up.connections_reused) == (2, 0)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """The WARNING-or-above records of the gateway, as the JSON lines it would write."""
    formatter = JsonFormatter()
    return [
        orjson.loads(formatter.format(record))
        for record in caplog.records
        if record.levelno >= logging.WARNING and record.name.startswith("mado_gateway")
    ]


def assert_nothing_private(lines: list[dict[str, object]]) -> None:
    text = orjson.dumps(lines).decode()
    assert STUDY not in text  # no UID: a base URL is what comes before the study path
    assert "?" not in text
    assert "@" not in text


async def test_a_failover_is_a_warning_naming_the_base_url_that_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    dead = DEAD + "dicom-web/"
    async with FaultUpstream() as up, running_gateway({"ok": [dead, up.base_url + "ok/"]}) as gw:
        status, _, _ = await fetch(gw.url("ok", query="includefield=00100010"))
    assert status == 200
    lines = warnings_of(caplog)
    assert [line["msg"] for line in lines] == ["upstream failed; failing over to the next base URL"]
    assert lines[0]["upstream"] == "ok"
    assert lines[0]["base_url"] == dead
    assert lines[0]["failover_to"] == up.base_url + "ok/"
    assert lines[0]["reason"] == "connect"
    assert_nothing_private(lines)


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [("status/500/", "status"), ("status/503/", "status"), ("reset/", "truncated")],
)
async def test_upstream_failures_and_aborts_are_warnings_with_the_base_url(
    caplog: pytest.LogCaptureFixture, scenario: str, reason: str
) -> None:
    caplog.set_level(logging.INFO)
    async with FaultUpstream() as up, running_gateway({"up": [up.base_url + scenario]}) as gw:
        await receive(gw.url("up"), deadline_s=5)
    lines = warnings_of(caplog)
    assert lines, "no warning for an upstream failure"
    assert all(line["upstream"] == "up" for line in lines)
    assert all(line["base_url"] == up.base_url + scenario for line in lines)
    assert lines[-1]["reason"] == reason
    assert_nothing_private(lines)


async def test_all_base_urls_failing_is_one_warning_per_base_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    other = f"http://127.0.0.1:{free_port()}/second/"
    async with running_gateway({"dead": [DEAD, other]}) as gw:
        assert (await fetch(gw.url("dead")))[0] == 502
    lines = warnings_of(caplog)
    assert [(line["base_url"], line["failover_to"]) for line in lines] == [
        (DEAD, other),
        (other, None),
    ]


async def test_a_4xx_answer_is_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with (
        FaultUpstream() as up,
        running_gateway({"status": [up.base_url + "status/404/"]}) as gw,
    ):
        assert (await fetch(gw.url("status")))[0] == 404
    assert warnings_of(caplog) == []


@pytest.mark.parametrize("status", ["101 Switching Protocols", "300 Multiple Choices", "999 Odd"])
async def test_a_redirect_hop_that_answers_an_odd_status_is_a_502(status: str) -> None:
    async with FaultUpstream() as up:
        base = up.base_url + "scripted/"
        target = base + f"studies/{uid(21)}"
        up.scripts[uid(20)] = Script(status="302 Found", headers={"Location": target})
        up.scripts[uid(21)] = Script(
            status=status, headers={"Content-Type": "application/json", "Upgrade": "h2c"}
        )
        upstream = {
            "protocol": "wado-rs",
            "base_urls": [base],
            "timeouts": {"connect_s": 1, "read_idle_s": 1},
            "redirects": {"allow_http": True},
        }
        async with running_gateway(
            {"scripted": [base]}, extra={"upstreams": {"scripted": upstream}}
        ) as gw:
            got = await receive(gw.url("scripted", f"studies/{uid(20)}"), deadline_s=5)
            assert (
                gw.metric("mado_gateway_redirects_total", upstream="scripted", outcome="followed")
                == 1
            )
    assert up.paths[-1].endswith(uid(21))  # the hop was followed
    assert (got.status, got.content_type) == (502, "application/problem+json")
    assert b"upstream-status" in got.body
    assert (
        status.split(maxsplit=1)[0].encode() in got.body
    )  # named in the detail, never as the status


async def test_an_interim_103_is_read_past_and_only_the_final_answer_is_relayed() -> None:
    jpeg = b"\xff\xd8" + bytes(500) + b"\xff\xd9"
    head = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </hint>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n" % len(jpeg)
    )
    async with (
        FaultUpstream() as up,
        running_gateway({"scripted": [up.base_url + "scripted/"]}, read_idle_s=IDLE_S) as gw,
    ):
        up.scripts[uid(30)] = Script(head_bytes=head, body=jpeg)
        async with (
            aiohttp.ClientSession() as session,
            session.get(gw.url("scripted", f"studies/{uid(30)}/rendered")) as answer,
        ):
            body = await answer.read()
            assert (answer.status, body) == (200, jpeg)
            assert "Link" not in answer.headers
