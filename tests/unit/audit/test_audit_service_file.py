"""AuditService end to end with the default file transport (no repository needed)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.audit.errors import JournalError, RecordError
from gateway.audit.messages import AlertKind, instances_transferred
from gateway.audit.record import AuditRecord, decode, encode
from gateway.audit.render import render
from gateway.audit.retrieves import messages_for
from gateway.audit.service import AuditService
from gateway.audit.settings import AuditSettings, parse_audit_settings
from gateway.audit.syslog import SyslogHeader, format_message
from gateway.exchange import Attempt, Exchange, InstanceSeen
from gateway.exchange import Outcome as ExchangeOutcome
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import (
    check_instances_transferred,
    settings_for,
    validate,
    xml_of,
)

IDENTITY = Identity(home_community_id=HomeCommunityId("5.6.7.8"), audit_source_id="gw-test")


def relayed(study: str, patients: tuple[str, ...] = ("P1",)) -> Exchange:
    exchange = Exchange(request_id="r", method="GET", path="/wado/x", client="127.0.0.1")
    exchange.route_kind = "relay"
    leg = exchange.open_leg("rig-b")
    leg.url = f"https://rig.b.example.org/wado/studies/{study}"
    exchange.home_community_id = "1.2.3.4"
    exchange.study_uid = study
    leg.attempts.append(Attempt(base_url="https://rig.b.example.org/wado/", status=200))
    exchange.status = 200
    exchange.outcome = ExchangeOutcome.COMPLETE
    for identity in (
        InstanceSeen(
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            sop_instance_uid=f"{study}.{n}",
            study_uid=study,
            series_uid=study + ".1",
            patient_id=patient,
            patient_id_issuer="1.2.3.4.9",
            patient_name=None,
        )
        for n, patient in enumerate(patients)
    ):
        exchange.note_instance(identity)
    exchange.finish()
    return exchange


def events_in(path: Path) -> list[str]:
    lines = path.read_bytes().splitlines()
    out = []
    for line in lines:
        root = validate(xml_of(line))
        out.append(root.find("EventIdentification/EventID").get("csd-code"))
        if out[-1] == "110104":
            check_instances_transferred(root)
    return out


async def test_start_observe_alert_stop(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    service = AuditService(settings_for(tmp_path), IDENTITY, registry=registry)
    assert service.ready() == "audit journal not open"
    await service.start()
    assert service.ready() is None
    service.observe(relayed("1.2.3.1", patients=("P1", "P2")))
    service.security_alert(AlertKind.REFUSED_URL, "https://evil.example.net/", "not allowed")
    await service.stop()
    events = events_in(tmp_path / "out" / "audit.log")
    # per patient: the outbound leg (110103), then the inbound one (110104)
    assert events == ["110100", "110103", "110103", "110104", "110104", "110113", "110100"]
    assert registry.get_sample_value("mado_gateway_audit_sent_total", {"destination": "file"}) == 7
    assert registry.get_sample_value("mado_gateway_audit_queue_depth") == 0
    lines = (tmp_path / "out" / "audit.log").read_bytes().splitlines()
    assert lines[5].startswith(b"<84>1 ")
    assert all(line.startswith(b"<85>1 ") for i, line in enumerate(lines) if i != 5)


def legacy_journal(directory: Path, frames: list[bytes], committed: int) -> None:
    """The journal directory an earlier release leaves: rendered frames, one offset."""
    directory.mkdir(parents=True)
    data = b"".join(struct.pack(">II", len(f), zlib.crc32(f)) + f for f in frames)
    (directory / f"{0:020d}.seg").write_bytes(data)
    (directory / "committed").write_text(f"{committed}\n")


async def test_a_journal_of_an_earlier_release_is_sent_verbatim_to_every_destination(
    tmp_path: Path,
) -> None:
    header = SyslogHeader(hostname="gw", app_name="mado-gateway", procid="1")
    frames = [
        format_message(render(message), header=header, timestamp=datetime.now(UTC))
        for n in range(20)
        for message in instances_transferred(relayed(f"1.2.3.{n}"), IDENTITY)
    ]
    sent_before = 5  # the earlier release had confirmed these
    legacy_journal(
        tmp_path / "journal", frames, committed=sum(8 + len(f) for f in frames[:sent_before])
    )
    settings = parse_audit_settings(
        {
            "audit": {
                "destinations": [
                    {"name": "a", "transport": "file", "file": {"path": str(tmp_path / "a.log")}},
                    {"name": "b", "transport": "file", "file": {"path": str(tmp_path / "b.log")}},
                ],
                "journal": {"directory": str(tmp_path / "journal"), "fsync_interval_s": 0.05},
            }
        },
        source="test",
    )
    service = AuditService(settings, IDENTITY, registry=CollectorRegistry())
    await service.start()
    await service.stop()
    for log in ("a.log", "b.log"):
        lines = (tmp_path / log).read_bytes().splitlines()
        assert lines[:15] == frames[sent_before:]  # byte for byte, in journal order
        assert events_in(tmp_path / log) == ["110104"] * 15 + ["110100", "110100"]
    assert not (tmp_path / "journal" / "committed").exists()


def file_destinations(tmp_path: Path, *names: str) -> AuditSettings:
    return parse_audit_settings(
        {
            "audit": {
                "destinations": [
                    {"name": n, "transport": "file", "file": {"path": str(tmp_path / n / "a.log")}}
                    for n in names
                ],
                "journal": {"directory": str(tmp_path / "journal"), "fsync_interval_s": 0.05},
                "retry": {"initial_s": 0.05, "max_s": 0.2},
                "stop_timeout_s": 3,
            }
        },
        source="test",
    )


async def test_a_destination_that_is_down_holds_back_only_its_own_cursor(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    (tmp_path / "down").write_text("a file where the folder should be")  # "down" cannot open
    service = AuditService(file_destinations(tmp_path, "up", "down"), IDENTITY, registry=registry)
    await service.start()
    for n in range(10):
        service.observe(relayed(f"1.2.3.{n}"))
    journal = service.journal
    for _ in range(100):
        if journal.cursor("up") == journal.end:
            break
        await asyncio.sleep(0.05)
    assert events_in(tmp_path / "up" / "a.log") == ["110100"] + ["110103", "110104"] * 10
    assert journal.cursor("up") == journal.end
    assert journal.cursor("down") == journal.start  # nothing confirmed
    assert journal.pending_records == journal.pending_records_of("down") == 21
    depth = "mado_gateway_audit_destination_queue_depth"
    assert registry.get_sample_value(depth, {"destination": "up"}) == 0
    assert registry.get_sample_value(depth, {"destination": "down"}) == 21
    assert registry.get_sample_value("mado_gateway_audit_queue_depth") == 21  # the slowest
    failures = "mado_gateway_audit_send_failures_total"
    down_failures = registry.get_sample_value(
        failures, {"destination": "down", "reason": "connect"}
    )
    assert down_failures is not None
    assert down_failures >= 1
    assert registry.get_sample_value(failures, {"destination": "up", "reason": "connect"}) == 0

    (tmp_path / "down").unlink()  # the destination comes back
    await service.stop()
    expected = ["110100"] + ["110103", "110104"] * 10 + ["110100"]
    assert events_in(tmp_path / "down" / "a.log") == expected
    assert events_in(tmp_path / "up" / "a.log") == expected


async def test_the_journal_holds_neutral_records_with_the_request_id(tmp_path: Path) -> None:
    service = AuditService(file_destinations(tmp_path, "a"), IDENTITY, registry=CollectorRegistry())
    await service.start()
    exchange = relayed("1.2.3.4", patients=("P1", "P2"))
    service.observe(exchange)
    entries = [decode(r.payload) for r in service.journal.read(0, max_bytes=1 << 20, max_records=9)]
    await service.stop()
    first, *legs = entries
    assert isinstance(first, AuditRecord)
    assert first.event == "application-activity"
    assert first.request_id is None
    expected = list(messages_for(exchange, IDENTITY, host=service.host))
    assert len(legs) == len(expected) == 4  # two patients, two legs
    for entry, (event, message) in zip(legs, expected, strict=True):
        assert isinstance(entry, AuditRecord)
        assert (entry.event, entry.request_id, entry.process_id) == (
            event,
            exchange.request_id,
            os.getpid(),
        )
        assert entry.message == message


async def test_a_journal_written_by_a_newer_release_is_refused_at_start(tmp_path: Path) -> None:
    legacy_journal(tmp_path / "journal", [b'{"v":2,"event":"security-alert"}'], committed=0)
    service = AuditService(file_destinations(tmp_path, "a"), IDENTITY, registry=CollectorRegistry())
    with pytest.raises(RecordError, match="version 2"):
        await service.start()
    assert service.ready() == "audit journal not open"


async def test_appends_never_wait_for_a_disk_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = CollectorRegistry()
    real = os.fdatasync

    def slow_disk(fd: int) -> None:
        time.sleep(1.0)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", slow_disk)
    service = AuditService(file_destinations(tmp_path, "a"), IDENTITY, registry=registry)
    await service.start()
    slowest = 0.0
    started = time.perf_counter()
    for n in range(400):
        before = time.perf_counter()
        service.observe(relayed(f"1.2.3.{n}"))
        slowest = max(slowest, time.perf_counter() - before)
        if n % 40 == 0:
            await asyncio.sleep(0.15)  # let the group-commit thread run into its slow flush
    elapsed = time.perf_counter() - started
    syncs = registry.get_sample_value("mado_gateway_audit_journal_syncs_total")
    await service.stop()
    assert syncs is not None
    assert syncs >= 1  # flushes did happen meanwhile, in their own thread ...
    assert slowest < 0.5  # ... and no append waited for one (a GC pause may take 0.1 s)
    assert syncs < 400 / 10  # group commit: far fewer flushes than appends
    print(
        f"\n400 appends in {elapsed:.2f}s with a 1s fdatasync: {syncs:.0f} flushes, "
        f"slowest append {slowest * 1e3:.1f} ms"
    )


async def test_journal_write_failure_makes_it_not_ready_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    service = AuditService(settings_for(tmp_path), IDENTITY, registry=registry)
    await service.start()
    real_append = service.journal.append

    def failing(payload: bytes, *, reserved: bool = False) -> int:
        raise JournalError("disk full", errno.ENOSPC)

    monkeypatch.setattr(service.journal, "append", failing)
    with caplog.at_level(logging.ERROR, logger="mado_gateway.audit"):
        service.observe(relayed("1.2.3.9"))
    assert service.ready() == "audit journal not writable: No space left on device"
    assert (  # both of its messages: the outbound leg's and the inbound leg's
        registry.get_sample_value("mado_gateway_audit_dropped_total", {"reason": "journal-error"})
        == 2
    )
    assert "audit journal write failed" in caplog.text
    monkeypatch.setattr(service.journal, "append", real_append)
    service.observe(relayed("1.2.3.10"))
    assert service.ready() is None
    await service.stop()


async def test_a_record_that_cannot_be_decoded_is_skipped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [
        encode(
            AuditRecord(
                event="instances-transferred",
                recorded_at=datetime.now(UTC),
                process_id=7,
                request_id=f"r{n}",
                message=instances_transferred(relayed(f"1.2.3.{n}"), IDENTITY)[0],
            )
        )
        for n in range(2)
    ]
    damaged = b'{"v":1,"event":"instances-transferred","message":[]}'  # a known version, broken
    legacy_journal(tmp_path / "journal", [good[0], damaged, good[1]], committed=0)
    registry = CollectorRegistry()
    service = AuditService(file_destinations(tmp_path, "a"), IDENTITY, registry=registry)
    with caplog.at_level(logging.ERROR, logger="mado_gateway.audit"):
        await service.start()
        await service.stop()
    assert events_in(tmp_path / "a" / "a.log") == ["110104", "110104", "110100", "110100"]
    skipped = "mado_gateway_audit_skipped_total"
    assert registry.get_sample_value(skipped, {"destination": "a", "reason": "undecodable"}) == 1
    assert "audit record skipped" in caplog.text
    assert service.journal.cursor("a") == service.journal.end  # it did not stop the destination


async def test_begin_transferring_is_journalled_once_before_the_first_byte(tmp_path: Path) -> None:
    service = AuditService(file_destinations(tmp_path, "a"), IDENTITY, registry=CollectorRegistry())
    await service.start()
    exchange = relayed("1.2.3.5")
    first = exchange.legs[0]
    first.first_byte_s = 0.1  # as Delivery.answered marks it, before telling the sinks
    service.answered(exchange, first)
    journalled = service.journal.end
    second = exchange.open_leg("rig-c")  # a second answered leg (a manifest's next path)
    second.first_byte_s = 0.2
    service.answered(exchange, second)
    assert service.journal.end == journalled  # the exchange has begun already
    entries = [decode(r.payload) for r in service.journal.read(0, max_bytes=1 << 20, max_records=9)]
    await service.stop()
    _, begin = entries
    assert isinstance(begin, AuditRecord)
    assert (begin.event, begin.request_id) == ("begin-transferring", exchange.request_id)
    assert begin.message.event.id.code == "110102"


async def test_the_senders_run_on_their_own_thread_not_the_request_loop(tmp_path: Path) -> None:
    threads: set[int] = set()

    class Recording:
        """A file-like transport that notes the thread of every call."""

        name = "recording"

        def __init__(self) -> None:
            self.sent: list[bytes] = []

        async def connect(self) -> None:
            threads.add(threading.get_ident())

        def peer_closed(self) -> bool:
            return False

        async def send(self, messages: Sequence[bytes]) -> None:
            threads.add(threading.get_ident())
            self.sent.extend(messages)

        def unconfirmed_bytes(self) -> int:
            return 0

        async def close(self) -> None:
            threads.add(threading.get_ident())

    transport = Recording()
    service = AuditService(
        settings_for(tmp_path), IDENTITY, registry=CollectorRegistry(), transport=transport
    )
    await service.start()
    for n in range(20):
        service.observe(relayed(f"1.2.3.{n}"))
    await service.stop()
    assert len(transport.sent) == 2 + 20 * 2  # start, stop, two legs per exchange
    assert threads and threading.get_ident() not in threads
