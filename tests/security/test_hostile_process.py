"""The hostile corpus against one gateway *process*, as an attacker would meet it: every
request, retrieveurl and volume attack in a row, with the process's RSS sampled throughout.

Acceptance of issue 16: no input yields a 500, a hang or a crash, nothing but the configured
source is contacted (listeners on 127.0.0.2 and ::1 must see no connection), the process
grows by less than 64 MB, and a legitimate retrieval afterwards is byte-identical.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import quote

import aiohttp

from peers.faults import FaultUpstream
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from tests.functional.test_memory import PeakRss
from tests.security.harness import Listener
from tests.security.test_corpus import LISTED, REQUEST_CASES, RETRIEVE_CASES, Case

OWN = "5.6.7.8"
RLUID = "1.2.3.1"
STUDY = "1.2.826.0.1.3680043.10.99.1"
MIB = 1024 * 1024


async def _raw(port: int, data: bytes, *, wait_s: float = 15) -> int:
    """Send ``data`` as is; the status of the answer (0: the connection was closed)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(65536), timeout=wait_s)
    except (ConnectionResetError, BrokenPipeError):
        answer = b""
    finally:
        writer.close()
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.") else 0


def _request(case: Case, target: str, port: int) -> bytes:
    lines = [f"{case.method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in case.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + case.body


def _fill(text: str, f4: Listener, f6: Listener, up: str) -> str:
    return text.format(
        F4=f4.authority, F6=f6.authority, p4=f4.port, p6=f6.port, UP=up, OTHER=up, STUDY=STUDY
    )


async def test_the_hostile_corpus_against_one_gateway_process(tmp_path: Path) -> None:
    async with (
        FaultUpstream() as up,
        Listener("127.0.0.2") as f4,
        Listener("::1") as f6,
    ):
        origin = up.base_url.rstrip("/")
        listed = [origin] + [_fill(o, f4, f6, origin) for o in LISTED]
        port = free_port()
        config = gateway_config(
            home_community_id=OWN,
            port=port,
            upstreams={"ok": {"protocol": "wado-rs", "base_urls": [up.base_url + "ok/"]}},
            sources={RLUID: "ok"},
            url_policy={"allowed_origins": listed},
            address_policy={"allowed_networks": ["127.0.0.1/32"]},
        )
        with GatewayProcess(tmp_path, config) as gateway, PeakRss(gateway.pid) as rss:
            statuses: dict[str, int] = {}
            for case in REQUEST_CASES:
                target = _fill(case.request, f4, f6, origin)
                statuses[case.name] = await _raw(port, _request(case, target, port))
            for case in RETRIEVE_CASES:
                value = quote(_fill(case.request, f4, f6, origin), safe="")
                target = f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/{STUDY}?retrieveurl={value}"
                statuses[case.name] = await _raw(port, _request(case, target, port))
            statuses |= await _volume_attacks(port)
            assert gateway.process is not None
            assert gateway.process.poll() is None, "the gateway process died"
            # A legitimate retrieval still works, byte for byte.
            url = f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/{STUDY}"
            async with aiohttp.ClientSession() as session, session.get(url) as answer:
                assert answer.status == 200
                assert await answer.read() == up.body
        errors = {name: status for name, status in statuses.items() if status == 500}
        assert not errors, f"500 for {json.dumps(errors)}"
        assert f4.connections == 0
        assert f6.connections == 0
        growth = (rss.peak - rss.baseline) / MIB
        print(f"\n{len(statuses)} hostile inputs: gateway RSS grew by {growth:.1f} MiB")  # -s
        assert growth < 64, f"the gateway process grew by {growth:.1f} MiB"


async def _volume_attacks(port: int) -> dict[str, int]:
    """Many connections, slow headers, oversized and chunked bodies, a flood of bad ids."""
    statuses: dict[str, int] = {}
    base = f"/wado/homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies"
    # 200 idle connections held open while others are served.
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(200)]
    try:
        statuses["served-beside-idle"] = await _raw(
            port, f"GET {base}/{STUDY} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
    finally:
        for _, writer in idle:
            writer.close()
    # A GET with a chunked body of 8 MiB: refused, never read into memory.
    chunk = b"%x\r\n%s\r\n" % (MIB, b"x" * MIB)
    head = f"GET {base}/{STUDY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    statuses["chunked-get-body"] = await _raw(port, head.encode() + chunk * 8 + b"0\r\n\r\n")
    # A manifest body far over the limit, chunked and with a Content-Length.
    head = "POST /mado/retrieve HTTP/1.1\r\nHost: x\r\nContent-Type: application/dicom\r\n"
    statuses["manifest-chunked-over-limit"] = await _raw(
        port, (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + chunk * 40 + b"0\r\n\r\n"
    )
    statuses["manifest-length-over-limit"] = await _raw(
        port, (head + f"Content-Length: {64 * MIB}\r\n\r\n").encode() + b"x" * MIB
    )
    # Garbage manifests of every kind.
    for name, body in {
        "manifest-empty": b"",
        "manifest-json-deep": b"[" * 100_000 + b"]" * 100_000,
        "manifest-not-dicom": b"\x00" * 4096,
        "manifest-dicm-garbage": b"\x00" * 128 + b"DICM" + b"\xff" * 4096,
    }.items():
        data = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        statuses[name] = await _raw(port, data)
    # A flood of malformed identifiers, 50 at a time.
    async def bad(index: int) -> int:
        return await _raw(port, f"GET {base}/1.{index:03d} HTTP/1.1\r\nHost: x\r\n\r\n".encode())

    for start in range(0, 500, 50):
        for offset, status in enumerate(await asyncio.gather(*(bad(i) for i in range(start, start + 50)))):
            statuses[f"flood-{start + offset}"] = status
    return statuses
