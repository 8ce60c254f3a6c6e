"""A retrieval cut off by a crash is on record: its Begin Transferring (110102) was journalled
before its first byte went out, and reaches the repository after a restart (issue 12,
item 3).

Real peers: the gateway runs as its own process and is SIGKILLed; rsyslog (mutual TLS) is the
Audit Record Repository, down while the retrievals run, so that what it finally stores came
from the journal of the killed process. The one scripted upstream (peers.faults) sends half
an answer and then nothing, which no real source does on demand: the retrievals are
mid-stream when the gateway dies. Three more retrievals get no answer head at all, so they
never send a byte: they must have no Begin Transferring.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp

from peers.faults import MULTIPART, FaultUpstream, Script, multipart_body
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from peers.studies import make_study
from tests.functional.audit.auditpeer import DICOM, event_of, parse
from tests.functional.audit.conftest import Pki, Rsyslog
from tests.functional.audit.test_audit_gateway import audit_tls
from tests.unit.audit.auditcheck import request_id_of

OWN = "5.6.7.8"
RLUID_SLOW = "1.2.3.60"
RLUID_SILENT = "1.2.3.61"


async def first_bytes(
    session: aiohttp.ClientSession, url: str, started: asyncio.Queue[str]
) -> None:
    """Ask, read the head and the first body bytes, report the request id, then wait."""
    async with session.get(url, headers={"Accept": DICOM}) as answer:
        assert answer.status == 200
        assert await answer.content.readany()  # a byte went out
        await started.put(answer.headers["X-Request-ID"])
        await asyncio.sleep(3600)  # until the gateway dies under it


async def test_sigkill_mid_stream_the_begin_transferring_of_every_started_retrieval_arrives(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    study = make_study(seed="begin", series_count=1, instances_per_series=4, rows=8, columns=8)
    body = multipart_body([i.part10 for i in study.instances])
    upstream = FaultUpstream(stall_s=60)
    upstream.scripts["slow"] = Script(
        headers={"Content-Type": MULTIPART}, body=body, fault="stall", offset=len(body) // 2
    )
    async with upstream:
        config = gateway_config(
            home_community_id=OWN,
            port=free_port(),
            upstreams={
                "slow": {
                    "protocol": "wado-rs",
                    "base_urls": [upstream.base_url + "scripted/slow/"],
                },
                "silent": {
                    "protocol": "wado-rs",
                    "base_urls": [upstream.base_url + "stall-headers/"],
                },
            },
            sources={RLUID_SLOW: "slow", RLUID_SILENT: "silent"},
            extra={"audit": audit_tls(rsyslog, pki, tmp_path)},
        )
        gateway = GatewayProcess(tmp_path / "gw", config)
        await asyncio.to_thread(gateway.__enter__)
        try:
            await asyncio.to_thread(rsyslog.stop)  # nothing leaves the journal from here on

            def url(rluid: str) -> str:
                return (
                    f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{rluid}"
                    f"/studies/{study.study_uid}"
                )

            started: asyncio.Queue[str] = asyncio.Queue()
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
                tasks = [
                    asyncio.create_task(first_bytes(session, url(RLUID_SLOW), started))
                    for _ in range(12)
                ]
                silent = [
                    asyncio.create_task(session.get(url(RLUID_SILENT), headers={"Accept": DICOM}))
                    for _ in range(3)
                ]
                async with asyncio.timeout(20):
                    sent_a_byte = {await started.get() for _ in range(12)}
                async with asyncio.timeout(20):  # the silent ones reached the upstream too
                    while len(upstream.paths) < 15:  # noqa: ASYNC110 - a fake with no event
                        await asyncio.sleep(0.05)
                await asyncio.to_thread(gateway.kill)  # SIGKILL, mid-stream
                for task in [*tasks, *silent]:
                    task.cancel()
                await asyncio.gather(*tasks, *silent, return_exceptions=True)
            await asyncio.to_thread(rsyslog.start)
            await asyncio.to_thread(gateway.__enter__)  # the same journal: sending resumes
            stored = await asyncio.to_thread(_wait_for_begins, rsyslog, sent_a_byte)
        finally:
            await asyncio.to_thread(gateway.stop)
    begins = [root for root in (parse(line) for line in stored) if event_of(root) == "110102"]
    begun = {request_id_of(root) for root in begins}
    assert sent_a_byte <= begun
    assert len(begun) == 12  # and none for the three that never sent a byte
    for root in begins:
        assert root.find("EventIdentification").get("EventActionCode") == "E"
        study_object = root.find(
            "ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='3']"
        )
        assert study_object.get("ParticipantObjectID") == study.study_uid


def _wait_for_begins(rsyslog: Rsyslog, wanted: set[str], timeout_s: float = 30) -> list[bytes]:
    """Every stored line, once a 110102 of each of ``wanted`` is among them."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = rsyslog.received()
        begun = {
            request_id_of(root)
            for root in (parse(line) for line in lines)
            if event_of(root) == "110102"
        }
        if wanted <= begun or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)
