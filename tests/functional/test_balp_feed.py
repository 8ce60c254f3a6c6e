"""The IHE BALP feed against a real FHIR server (Medplum's engine, which validates every
AuditEvent against the FHIR R4 definitions and refuses an invalid one): 1,000 audited
exchanges reach the server, which is restarted twice meanwhile, none lost, each accepted as
a valid AuditEvent, alongside a file destination with its own cursor."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.audit.service import AuditService
from gateway.audit.settings import parse_audit_settings
from gateway.exchange import Attempt, Exchange, InstanceSeen
from gateway.exchange import Outcome as ExchangeOutcome
from peers.fhirserver import FhirServer, fhir_peer_available
from routing.ids import HomeCommunityId
from routing.model import Identity


@pytest.fixture(scope="module", autouse=True)
def fhir_peer_installed() -> None:
    """Fails (never skips) every test here when the FHIR peer cannot start."""
    reason = fhir_peer_available()
    if reason is not None:
        pytest.fail(f"the FHIR peer cannot start: {reason}")


IDENTITY = Identity(
    home_community_id=HomeCommunityId("1.3.6.1.4.1.21367.13.80.1"),
    audit_source_id="rig.a.example.org",
    enterprise_site_id="CommunityA",
)
STUDY = "1.2.826.0.1.3680043.10.99.1"
EVENTS = 1000
XREQUEST = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"


def exchange(number: int) -> Exchange:
    built = Exchange(
        request_id=f"balp-{number:05d}",
        method="GET",
        path=f"/wado/homeCommunityId/1.3.6.1.4.1.21367.13.80.1/RetrieveLocationUID/1.2.3/studies/{STUDY}",
        client="192.0.2.77",
        started_wall=datetime(2026, 3, 16, 10, 15, 30, tzinfo=UTC).timestamp() + number,
        route_kind="source",
        resource="study",
        home_community_id="1.3.6.1.4.1.21367.13.80.1",
        study_uid=STUDY,
        status=200,
        outcome=ExchangeOutcome.COMPLETE,
        duration_s=0.5,
    )
    leg = built.open_leg("ids-a")
    leg.url = f"https://ids.a.example.org/wado-rs/studies/{STUDY}"
    leg.attempts.append(Attempt(base_url="https://ids.a.example.org/wado-rs/"))
    built.note_instance(
        InstanceSeen(
            sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
            sop_instance_uid=f"{STUDY}.1.{number + 1}",
            study_uid=STUDY,
            series_uid=f"{STUDY}.1",
            patient_id=f"P{number}",
            patient_id_issuer="1.2.3.4.9",
            patient_name=None,
        )
    )
    return built


def request_ids(resource: dict[str, object]) -> list[str]:
    entities = resource.get("entity", [])
    assert isinstance(entities, list)
    return [
        e["what"]["identifier"]["value"]
        for e in entities
        if e.get("type", {}).get("system") == XREQUEST
    ]


async def test_thousand_events_survive_two_server_restarts(tmp_path: Path) -> None:
    with FhirServer(tmp_path / "fhir") as fhir:
        settings = parse_audit_settings(
            {
                "audit": {
                    "destinations": [
                        {
                            "name": "balp",
                            "transport": "fhir",
                            # plain http: what is under test here is restarts, not TLS
                            # (test_balp_tls.py sends over TLS)
                            "fhir": {"base_url": fhir.base_url, "allow_http": True},
                        },
                        {
                            "name": "local",
                            "transport": "file",
                            "file": {"path": str(tmp_path / "a.log")},
                        },
                    ],
                    "journal": {"directory": str(tmp_path / "journal"), "fsync_interval_s": 0.05},
                    "retry": {"initial_s": 0.05, "max_s": 0.2},
                }
            },
            source="test",
        )
        service = AuditService(settings, IDENTITY, registry=CollectorRegistry())
        await service.start()
        try:
            for number in range(EVENTS):
                service.observe(exchange(number))
                if number in (300, 650):
                    await asyncio.sleep(0.3)  # let the feed be mid-stream, then restart
                    await asyncio.to_thread(fhir.restart)
                elif number % 50 == 0:
                    await asyncio.sleep(0)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                stored = await asyncio.to_thread(fhir.search, "AuditEvent")
                seen = {rid for resource in stored for rid in request_ids(resource)}
                if len(seen) >= EVENTS:
                    break
                await asyncio.sleep(0.3)
        finally:
            await service.stop()
        seen = {rid for resource in stored for rid in request_ids(resource)}
        assert seen == {f"balp-{n:05d}" for n in range(EVENTS)}
        transferred = [r for r in stored if r["type"]["code"] == "110104"]
        assert all(
            r["meta"]["profile"]
            == ["https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"]
            for r in transferred
        )
        # The file destination kept its own cursor and has every event as well.
        assert (tmp_path / "a.log").read_bytes().count(b'csd-code="110104"') >= EVENTS
