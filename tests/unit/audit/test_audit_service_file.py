"""AuditService end to end with the default file transport (no repository needed)."""

from __future__ import annotations

import errno
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.audit.errors import JournalError
from gateway.audit.journal import Journal
from gateway.audit.messages import AlertKind, instances_transferred
from gateway.audit.render import render
from gateway.audit.service import AuditService
from gateway.audit.settings import AuditSettings, parse_audit_settings
from gateway.audit.syslog import SyslogHeader, format_message
from gateway.exchange import Exchange, InstanceSeen
from gateway.exchange import Outcome as ExchangeOutcome
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import check_instances_transferred, validate, xml_of

IDENTITY = Identity(home_community_id=HomeCommunityId("5.6.7.8"), audit_source_id="gw-test")


def settings_for(tmp_path: Path, **journal: object) -> AuditSettings:
    return parse_audit_settings(
        {
            "audit": {
                "file": {"path": str(tmp_path / "out" / "audit.log")},
                "journal": {
                    "directory": str(tmp_path / "journal"),
                    "fsync_interval_s": 0.05,
                    **journal,
                },
                "stop_timeout_s": 3,
            }
        },
        source="test",
    )


def relayed(study: str, patients: tuple[str, ...] = ("P1",)) -> Exchange:
    exchange = Exchange(request_id="r", method="GET", path="/wado/x", client="127.0.0.1")
    exchange.route_kind = "relay"
    exchange.upstream = "rig-b"
    exchange.upstream_url = f"https://rig.b.example.org/wado/studies/{study}"
    exchange.home_community_id = "1.2.3.4"
    exchange.study_uid = study
    exchange.attempts = 1
    exchange.status = 200
    exchange.outcome = ExchangeOutcome.COMPLETE
    exchange.instances = [
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
    ]
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
    assert events == ["110100", "110104", "110104", "110113", "110100"]
    assert registry.get_sample_value("mado_gateway_audit_sent_total") == 5
    assert registry.get_sample_value("mado_gateway_audit_queue_depth") == 0
    lines = (tmp_path / "out" / "audit.log").read_bytes().splitlines()
    assert lines[3].startswith(b"<84>1 ")
    assert all(line.startswith(b"<85>1 ") for i, line in enumerate(lines) if i != 3)


async def test_backlog_of_a_previous_process_is_sent_at_start(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    header = SyslogHeader(hostname="gw", app_name="mado-gateway", procid="1")
    previous = Journal(settings.journal.directory, max_bytes=settings.journal.max_bytes)
    previous.open()
    for n in range(20):
        for message in instances_transferred(relayed(f"1.2.3.{n}"), IDENTITY):
            previous.append(
                format_message(render(message), header=header, timestamp=datetime.now(UTC))
            )
    previous.close()

    service = AuditService(settings, IDENTITY, registry=CollectorRegistry())
    await service.start()
    await service.stop()
    events = events_in(tmp_path / "out" / "audit.log")
    assert events.count("110104") == 20
    assert events[:20] == ["110104"] * 20  # the backlog goes first, in journal order


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
    assert (
        registry.get_sample_value("mado_gateway_audit_dropped_total", {"reason": "journal-error"})
        == 1
    )
    assert "audit journal write failed" in caplog.text
    monkeypatch.setattr(service.journal, "append", real_append)
    service.observe(relayed("1.2.3.10"))
    assert service.ready() is None
    await service.stop()
