"""Bounded memory per stream: a gateway process relaying to a client that reads slowly.

The source (peers.faults, in this process) can send far faster than the client reads, so
without backpressure the gateway would buffer the difference. Its peak RSS is sampled from
another thread while 256 MiB pass through. The full 1 GB figures come from bench/stream.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import aiohttp
import psutil
import pytest

from peers.faults import FaultUpstream
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port

MIB = 1024 * 1024


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.checklist(18)
async def test_slow_client_keeps_gateway_memory_bounded(tmp_path: Path) -> None:
    parts = 256
    async with FaultUpstream(big_block=bytes(MIB), big_blocks=parts) as up:
        config = gateway_config(
            home_community_id="5.6.7.8",
            port=free_port(),
            upstreams={"fast": {"protocol": "wado-rs", "base_urls": [up.base_url + "big/"]}},
            sources={"1.2.3": "fast"},
        )
        with GatewayProcess(tmp_path, config) as gateway:
            url = f"{gateway.endpoint}homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/studies/1.2.3.4"
            received = 0
            with PeakRss(gateway.pid) as rss:
                async with (
                    aiohttp.ClientSession(read_bufsize=256 * 1024) as session,
                    session.get(url) as answer,
                ):
                    assert answer.status == 200
                    started = time.monotonic()
                    async for chunk in answer.content.iter_chunked(256 * 1024):
                        received += len(chunk)
                        # Read at about 100 MiB/s: far slower than loopback can deliver.
                        ahead = received / (100 * MIB) - (time.monotonic() - started)
                        if ahead > 0:
                            await asyncio.sleep(ahead)
    assert received == (
        MIB + len(b"--fault-boundary-7d1f\r\nContent-Type: application/dicom\r\n\r\n\r\n")
    ) * parts + len(b"--fault-boundary-7d1f--\r\n")
    growth_mib = (rss.peak - rss.baseline) / MIB
    assert growth_mib < 24, f"gateway RSS grew by {growth_mib:.1f} MiB while relaying {parts} MiB"
