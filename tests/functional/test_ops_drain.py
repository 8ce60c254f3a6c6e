"""Issue 14 item 2: SIGTERM drains — a stream in flight finishes within ``server.drain_s``, or
is cut and logged ``shutdown`` (never ``client``); ``/readyz`` is 503 at once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port

BOUNDARY = "drain-boundary"
PART = b"\x00" * 16384


class SlowUpstream:
    """A WADO-RS source whose answer takes ``seconds``: one 16 KiB part every 0.1 s."""

    def __init__(self, seconds: float) -> None:
        self.parts = int(seconds / 0.1)
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def size(self) -> int:
        return len(self.body_bytes())

    def body_bytes(self) -> bytes:
        part = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + PART + b"\r\n"
        return part * self.parts + f"--{BOUNDARY}--\r\n".encode()

    async def __aenter__(self) -> SlowUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            kind = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
            writer.write(
                f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nTransfer-Encoding: chunked\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            part = f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            for _ in range(self.parts):
                block = part + PART + b"\r\n"
                writer.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.1)
            end = f"--{BOUNDARY}--\r\n".encode()
            writer.write(f"{len(end):x}\r\n".encode() + end + b"\r\n0\r\n\r\n")
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


def gateway_for(upstream: SlowUpstream, drain_s: float) -> dict[str, Any]:
    config = gateway_config(
        home_community_id="5.6.7.8",
        port=free_port(),
        upstreams={
            "slow": {
                "protocol": "wado-rs",
                "base_urls": [f"http://127.0.0.1:{upstream.port}/"],
                "timeouts": {"read_idle_s": 30},
            }
        },
        sources={"1.2.3": "slow"},
    )
    config["server"]["drain_s"] = drain_s
    return config


def lines(gateway: GatewayProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gateway.log().splitlines() if line.startswith("{")]


async def status(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return answer.status, await answer.json(content_type=None)


async def exit_code(gateway: GatewayProcess, timeout_s: float) -> int:
    process = gateway.process
    assert process is not None
    deadline = time.monotonic() + timeout_s
    while process.poll() is None:
        assert time.monotonic() < deadline, "the gateway did not stop"
        await asyncio.sleep(0.05)
    return process.returncode


URL = "homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/1.2"


async def test_a_stream_in_flight_finishes_within_drain_s(tmp_path: Path) -> None:
    async with SlowUpstream(seconds=2.0) as upstream:
        with GatewayProcess(tmp_path, gateway_for(upstream, drain_s=10)) as gateway:
            async with (
                aiohttp.ClientSession() as session,
                session.get(gateway.endpoint + URL) as answer,
            ):
                first = await answer.content.readany()
                signalled = time.monotonic()
                gateway.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.2)
                # not ready at once (admin listener), and no new connection on the port
                code, problem = await status(gateway.admin_url + "/readyz")
                assert code == 503 and "draining" in problem["detail"]
                with pytest.raises(aiohttp.ClientConnectionError):
                    await status(gateway.url + "/livez")
                rest = await answer.read()  # ends complete, or raises
            assert len(first) + len(rest) == upstream.size
            assert await exit_code(gateway, 10) == 0
            took = time.monotonic() - signalled
    logged = lines(gateway)
    draining = next(line for line in logged if line["msg"] == "SIGTERM received: draining")
    assert draining["in_flight"] == 1 and draining["drain_s"] == 10
    exchange = next(line for line in logged if line["msg"] == "exchange" and line["route"] == "source")
    assert exchange["outcome"] == "complete" and exchange["error"] is None
    stopped = next(line for line in logged if line["msg"] == "gateway stopped")
    assert stopped["drained"] is True and stopped["cut"] == 0
    assert took < 5


async def test_a_stream_past_drain_s_is_cut_and_logged_as_shutdown(tmp_path: Path) -> None:
    async with SlowUpstream(seconds=60) as upstream:
        with GatewayProcess(tmp_path, gateway_for(upstream, drain_s=1)) as gateway:
            async with (
                aiohttp.ClientSession() as session,
                session.get(gateway.endpoint + URL) as answer,
            ):
                await answer.content.readany()
                signalled = time.monotonic()
                gateway.send_signal(signal.SIGTERM)
                with pytest.raises(aiohttp.ClientPayloadError):
                    await answer.read()  # cut: never a complete-looking answer
            assert await exit_code(gateway, 10) == 0
            took = time.monotonic() - signalled
    assert 1 <= took < 4
    logged = lines(gateway)
    exchange = next(line for line in logged if line["msg"] == "exchange" and line["route"] == "source")
    assert (exchange["outcome"], exchange["error"]) == ("aborted", "shutdown")
    stopped = next(line for line in logged if line["msg"] == "gateway stopped")
    assert stopped["drained"] is False and stopped["cut"] == 1
