"""Audit against a real Audit Record Repository (rsyslog, see conftest.py).

Covers the issue's transport and durability promises: byte-exact RFC 5425 and RFC 5426
delivery with mutual TLS, nothing lost while the repository is down or restarted, an idle
connection closed by the repository, a SIGKILL-ed process resumed from its journal, and the
journal cap.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import signal
import ssl
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.audit.destinations import SyslogRenderer
from gateway.audit.journal import Journal
from gateway.audit.messages import AlertKind, instances_transferred
from gateway.audit.metrics import AuditMetrics
from gateway.audit.record import AuditRecord, encode
from gateway.audit.sender import Sender
from gateway.audit.service import AuditService
from gateway.audit.transports import TlsTransport, UdpTransport, client_tls_context
from tests.functional.audit.auditpeer import (
    IDENTITY,
    event_of,
    parse,
    relayed,
    studies_in,
    tls_settings,
)
from tests.functional.audit.conftest import Pki, Rsyslog
from tests.unit.audit.auditcheck import check_instances_transferred

ROOT = Path(__file__).resolve().parents[3]
RENDER = SyslogRenderer(hostname="rig.a.test", app_name="mado-gateway")


def sample(registry: CollectorRegistry, name: str, labels: dict[str, str] | None = None) -> float:
    value = registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


def records(count: int) -> list[AuditRecord]:
    out = []
    for index in range(count):
        patients = ("PAT-1", "PAT-2") if index % 3 == 0 else ("PAT-1",)
        for message in instances_transferred(relayed(index, patients), IDENTITY):
            out.append(
                AuditRecord(
                    event="instances-transferred",
                    recorded_at=datetime.now(UTC),
                    process_id=77,
                    request_id=f"r{index}",
                    message=message,
                )
            )
    return out


def payloads(count: int) -> list[bytes]:
    return [RENDER(record) for record in records(count)]


def service_for(rsyslog: Rsyslog, pki: Pki, tmp_path: Path, **journal: object) -> AuditService:
    settings = tls_settings(
        port=rsyslog.tcp_port,
        journal=str(tmp_path / "journal"),
        ca=pki.ca_file,
        cert=pki.client_cert,
        key=pki.client_key,
        **journal,
    )
    return AuditService(settings, IDENTITY, registry=CollectorRegistry())


def tls(pki: Pki, port: int) -> TlsTransport:
    context = client_tls_context(
        ca_file=pki.ca_file, cert_file=pki.client_cert, key_file=pki.client_key
    )
    return TlsTransport("127.0.0.1", port, context, connect_timeout_s=2)


async def wait_for(rsyslog: Rsyslog, count: int, timeout_s: float = 20) -> list[bytes]:
    return await asyncio.to_thread(rsyslog.wait_for, count, timeout_s)


@pytest.mark.checklist(55)
async def test_tls_delivery_is_byte_exact(rsyslog: Rsyslog, pki: Pki, tmp_path: Path) -> None:
    journalled = records(30)
    journal = Journal(tmp_path / "journal", cursors=("arr",), max_bytes=1 << 24)
    journal.open()
    for record in journalled:
        journal.append(encode(record))
    sender = Sender(
        journal,
        "arr",
        tls(pki, rsyslog.tcp_port),
        RENDER,
        AuditMetrics(CollectorRegistry()).destination("arr"),
        settle_s=0.1,
    )
    task = asyncio.create_task(sender.run())
    assert await sender.flush(15)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    sender.release()
    journal.close()
    sent = [RENDER(record) for record in journalled]  # rendered at send time
    stored = await wait_for(rsyslog, len(sent))
    assert stored == sent
    for line in stored:
        check_instances_transferred(parse(line))


async def test_udp_delivery_is_byte_exact(rsyslog: Rsyslog, tmp_path: Path) -> None:
    sent = payloads(5)
    transport = UdpTransport("127.0.0.1", rsyslog.udp_port)
    await transport.connect()
    for payload in sent:  # one datagram at a time keeps loopback from dropping any
        await transport.send([payload])
        await asyncio.sleep(0.01)
    await transport.close()
    assert await wait_for(rsyslog, len(sent)) == sent


@pytest.mark.checklist(57)
async def test_service_messages_arrive_and_validate(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    service = service_for(rsyslog, pki, tmp_path)
    await service.start()
    service.observe(relayed(1, patients=("PAT-1", "PAT-2")))
    service.security_alert(
        AlertKind.REFUSED_URL,
        "https://evil.example.net/wado",
        "origin not allowed",
        performer="192.0.2.9",
    )
    await service.stop()
    stored = await wait_for(rsyslog, 7)
    roots = [parse(line) for line in stored]
    # per patient, the outbound leg (110103) then the inbound one (110104)
    assert [event_of(root) for root in roots] == [
        "110100",
        "110103",
        "110103",
        "110104",
        "110104",
        "110113",
        "110100",
    ]
    for legs in (roots[1:3], roots[3:5]):
        patients = {
            r.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='1']").get(
                "ParticipantObjectID"
            )
            for r in legs
        }
        assert patients == {"PAT-1^^^&1.2.3.4.9&ISO", "PAT-2^^^&1.2.3.4.9&ISO"}
    alert = roots[5].find("ParticipantObjectIdentification")
    assert alert.get("ParticipantObjectID") == "https://evil.example.net/wado"


async def test_a_client_without_certificate_stores_nothing(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    context = client_tls_context(
        ca_file=pki.ca_file, cert_file=pki.client_cert, key_file=pki.client_key
    )
    anonymous = ssl.create_default_context(cafile=pki.ca_file)
    transport = TlsTransport("127.0.0.1", rsyslog.tcp_port, anonymous, connect_timeout_s=2)
    try:
        await transport.connect()
        await transport.send(payloads(1))
        await asyncio.sleep(0.5)
    except Exception:
        pass
    finally:
        await transport.close()
    # The same message from an authenticated client is stored, and is the only one.
    authenticated = TlsTransport("127.0.0.1", rsyslog.tcp_port, context)
    await authenticated.connect()
    marker = payloads(2)[-1]
    await authenticated.send([marker])
    await authenticated.close()
    assert await wait_for(rsyslog, 1) == [marker]
    await asyncio.sleep(0.3)
    assert rsyslog.received() == [marker]


@pytest.mark.checklist(56)
async def test_repository_down_and_restarted_three_times_loses_nothing(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    service = service_for(rsyslog, pki, tmp_path)
    service.metrics = AuditMetrics(registry)
    rsyslog.stop()
    await service.start()
    for index in range(300):
        service.observe(relayed(index))
    await asyncio.sleep(0.5)
    assert sample(registry, "mado_gateway_audit_queue_depth") == 601  # 2 per exchange
    assert (
        sample(
            registry,
            "mado_gateway_audit_send_failures_total",
            {"destination": "tls", "reason": "connect"},
        )
        > 0
    )
    await asyncio.to_thread(rsyslog.start)
    next_index = 300
    for _ in range(3):
        for _ in range(4):
            for _ in range(25):
                service.observe(relayed(next_index))
                next_index += 1
            await asyncio.sleep(0.1)
        await asyncio.to_thread(rsyslog.restart)
    for index in range(next_index, 1000):
        service.observe(relayed(index))
    await service.stop()
    stored = await wait_for(rsyslog, 2002, timeout_s=30)
    studies = studies_in(stored)
    counts = collections.Counter(studies)
    assert set(counts) == {f"1.2.9.{i}" for i in range(1000)}
    duplicates = sum(n - 1 for n in counts.values())
    resent = sample(registry, "mado_gateway_audit_resent_total", {"destination": "tls"})
    assert duplicates <= resent
    print(f"\n1000 exchanges, 3 restarts: {duplicates} duplicates, {resent} resent")


async def test_idle_connection_closed_by_the_repository(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    service = service_for(rsyslog, pki, tmp_path)
    service.metrics = AuditMetrics(registry)
    await service.start()
    service.observe(relayed(1))
    assert len(await wait_for(rsyslog, 3)) == 3
    await asyncio.sleep(0.5)  # idle, everything confirmed
    await asyncio.to_thread(rsyslog.restart)
    await asyncio.sleep(0.3)
    service.observe(relayed(2))
    stored = await wait_for(rsyslog, 5, timeout_s=5)
    assert studies_in(stored) == ["1.2.9.1", "1.2.9.2"]
    assert sample(registry, "mado_gateway_audit_resent_total", {"destination": "tls"}) == 0
    assert (
        sample(
            registry,
            "mado_gateway_audit_send_failures_total",
            {"destination": "tls", "reason": "write"},
        )
        == 0
    )
    await service.stop()


async def test_sigkill_then_resume_from_the_journal(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    journal = str(tmp_path / "journal")
    child = await asyncio.to_thread(
        subprocess.Popen,
        [
            sys.executable,
            "-m",
            "tests.functional.audit.audit_child",
            str(rsyslog.tcp_port),
            journal,
            pki.ca_file,
            pki.client_cert,
            pki.client_key,
            "400",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    journaled: list[int] = []
    while len(journaled) < 200:
        line = await asyncio.to_thread(child.stdout.readline)
        assert line, "child exited early"
        journaled.append(int(line.split()[1]))
        if len(journaled) == 100:
            # From here on the child journals what it cannot send: the next process must.
            await asyncio.to_thread(rsyslog.stop)
    child.send_signal(signal.SIGKILL)
    rest, _ = await asyncio.to_thread(child.communicate)
    journaled += [int(line.split()[1]) for line in rest.splitlines()]
    before = len(studies_in(rsyslog.received()))
    await asyncio.to_thread(rsyslog.start)

    registry = CollectorRegistry()
    service = service_for(rsyslog, pki, tmp_path)
    service.metrics = AuditMetrics(registry)
    await service.start()
    await service.stop()
    stored = await wait_for(rsyslog, 2 * len(journaled) + 3)  # 2 messages per exchange
    counts = collections.Counter(studies_in(stored))
    assert set(counts) == {f"1.2.9.{i}" for i in journaled}
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nkilled after {len(journaled)} journaled, {before} stored; {duplicates} sent twice")
    assert before < len(journaled)  # the kill really left work for the next process


async def test_journal_cap_with_repository_unreachable(
    pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arr = Rsyslog(tmp_path / "arr", pki)  # ports reserved, not started yet
    registry = CollectorRegistry()
    service = service_for(arr, pki, tmp_path, max_bytes=65536)
    service.metrics = AuditMetrics(registry)
    await service.start()
    with caplog.at_level(logging.ERROR, logger="mado_gateway.audit"):
        for index in range(120):
            service.observe(relayed(index))  # never raises, never blocks
    assert service.ready() is None
    assert sample(registry, "mado_gateway_audit_journal_full") == 1
    dropped = sample(registry, "mado_gateway_audit_dropped_total", {"reason": "journal-full"})
    assert dropped > 0
    assert "audit journal cap reached" in caplog.text
    kept = sample(registry, "mado_gateway_audit_queue_depth")

    await asyncio.to_thread(arr.start)
    try:
        await service.stop()
        stored = await wait_for(arr, int(kept) + 2)
        events = [event_of(parse(line)) for line in stored]
        alerts = [parse(line) for line in stored if event_of(parse(line)) == "110113"]
        types = [a.find("EventIdentification/EventTypeCode").get("csd-code") for a in alerts]
        assert types == ["110133", "110134"]
        assert events.count("110100") == 2  # Application Stop used the reserve too
        assert events.count("110103") + events.count("110104") == 2 * 120 - dropped
        assert sample(registry, "mado_gateway_audit_journal_full") == 0
    finally:
        arr.stop()
