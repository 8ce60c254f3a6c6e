"""The audit trail of a running gateway process, end to end (issue acceptance).

Real peers: the gateway runs as its own process; Orthanc is the Imaging Document Source;
rsyslog (mutual TLS) is the Audit Record Repository. The one scripted upstream
(peers.faults) serves a study whose instances belong to two patients, which Orthanc will not
do: it files the instances under two studies and answers 404 for the study UID.
"""

from __future__ import annotations

import asyncio
import collections
import io
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pydicom
import pytest

from peers.faults import FaultUpstream, multipart_body
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study
from tests.functional.audit.auditpeer import event_of, get, parse
from tests.functional.audit.conftest import Pki, Rsyslog
from tests.unit.audit.auditcheck import check_instances_transferred

OWN = "5.6.7.8"
RLUID = "1.2.3.50"


def audit_tls(rsyslog: Rsyslog, pki: Pki, folder: Path, **journal: Any) -> dict[str, Any]:
    return {
        "transport": "tls",
        "tls": {
            "host": "127.0.0.1",
            "port": rsyslog.tcp_port,
            "ca_file": pki.ca_file,
            "cert_file": pki.client_cert,
            "key_file": pki.client_key,
            "settle_s": 0.2,
            "connect_timeout_s": 2,
        },
        "journal": {"directory": str(folder / "journal"), "fsync_interval_s": 0.05, **journal},
        "retry": {"initial_s": 0.05, "max_s": 0.5},
        "stop_timeout_s": 20,
    }



def study_of(root: Any) -> str:
    studies = [
        o.get("ParticipantObjectID")
        for o in root.findall("ParticipantObjectIdentification")
        if o.get("ParticipantObjectTypeCodeRole") == "3"
    ]
    assert len(studies) == 1
    return str(studies[0])


@pytest.mark.checklist(56)
def test_a_thousand_retrievals_survive_arr_restarts_and_a_sigkill(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    count = 1000
    studies = [
        make_study(seed=f"audit-{n}", series_count=1, instances_per_series=1, rows=2, columns=2)
        for n in range(count)
    ]
    with OrthancServer(tmp_path / "orthanc") as orthanc:
        orthanc.upload_all([s.instances[0].part10 for s in studies])
        config = gateway_config(
            home_community_id=OWN,
            port=free_port(),
            upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
            sources={RLUID: "orthanc"},
            extra={"audit": audit_tls(rsyslog, pki, tmp_path)},
        )
        gateway = GatewayProcess(tmp_path / "gw", config)

        def retrieve(numbers: range) -> None:
            for n in numbers:
                study = studies[n]
                instance = study.instances[0]
                url = (
                    f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/"
                    f"{study.study_uid}/series/{instance.series_uid}/instances/{instance.sop_instance_uid}"
                )
                assert get(url) == 200

        with gateway:
            retrieve(range(0, 200))
            rsyslog.stop()  # the repository is down for a while …
            retrieve(range(200, 450))
            time.sleep(1)
            rsyslog.start()  # … and comes back: restart 1
            retrieve(range(450, 550))
            rsyslog.restart()  # restart 2
            retrieve(range(550, 650))
            rsyslog.restart()  # restart 3
            retrieve(range(650, 750))
            gateway.kill()  # SIGKILL: no Application Stop, whatever was unsent stays journalled
            gateway.__enter__()  # the same journal: sending resumes
            retrieve(range(750, count))
        # leaving the block stops the gateway cleanly: Application Stop, backlog flushed

        # Duplicates count as lines too, so wait for the studies, not for a number of lines.
        expected = {s.study_uid for s in studies}
        stored = _wait_for_studies(rsyslog, expected, timeout_s=60)
        log_tail = gateway.log()[-3000:]
    roots = [parse(line) for line in stored]  # every stored message parses and validates
    transferred = [r for r in roots if event_of(r) == "110104"]
    for root in transferred:
        check_instances_transferred(root)
    per_study = collections.Counter(study_of(r) for r in transferred)
    assert set(per_study) == expected, f"lost: {sorted(expected - set(per_study))}\n{log_tail}"
    duplicates = sum(n - 1 for n in per_study.values())
    # At least once: a message is resent when a connection broke (3 restarts) or the process
    # died (1 SIGKILL) after the repository got it but before the commit was recorded; each
    # interruption can repeat only what was in flight then, so no message arrives more than
    # once per interruption.
    assert max(per_study.values()) <= 1 + 4
    starts_and_stops = [r for r in roots if event_of(r) == "110100"]
    assert len(starts_and_stops) == 3  # start, (killed: no stop), start, stop
    print(
        f"\n1000 retrievals: {len(transferred)} Instances Transferred stored, {duplicates} duplicates"
    )


@pytest.mark.checklist(46)
async def test_two_patients_in_one_retrieval_give_one_message_each(tmp_path: Path) -> None:
    study = make_study(
        seed="two-patients", series_count=1, instances_per_series=3, rows=2, columns=2
    )
    parts = []
    for index, instance in enumerate(study.instances):
        ds = pydicom.dcmread(io.BytesIO(instance.part10))
        ds.PatientID = "PAT-A" if index < 2 else "PAT-B"
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        parts.append(buffer.getvalue())
    async with FaultUpstream(body=multipart_body(parts)) as upstream:
        config = gateway_config(
            home_community_id=OWN,
            port=free_port(),
            upstreams={"ids": {"protocol": "wado-rs", "base_urls": [upstream.base_url + "ok/"]}},
            sources={RLUID: "ids"},
        )
        with GatewayProcess(tmp_path, config) as gateway:
            url = f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/{study.study_uid}"
            assert await asyncio.to_thread(get, url) == 200
            log = gateway.audit_folder / "audit.log"
            roots = await asyncio.to_thread(_wait_for_events, log, "110104", 2)
    patients = []
    for root in roots:
        check_instances_transferred(root)
        patient = next(
            o
            for o in root.findall("ParticipantObjectIdentification")
            if o.get("ParticipantObjectTypeCodeRole") == "1"
        )
        patients.append(patient.get("ParticipantObjectID"))
        assert study_of(root) == study.study_uid
    issuer = "1.2.826.0.1.3680043.10.1234"
    assert sorted(patients) == [f"PAT-A^^^&{issuer}&ISO", f"PAT-B^^^&{issuer}&ISO"]


@pytest.mark.checklist(15)
def test_refused_retrieve_url_is_a_security_alert_naming_the_target(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    config = gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID: "orthanc"},
    )
    target = "https://evil.example.com/wado-rs/"
    with GatewayProcess(tmp_path, config) as gateway:
        url = (
            f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/1.2.3"
            f"?retrieveurl={urllib.parse.quote(target, safe='')}"
        )
        assert get(url) == 403
        (alert,) = _wait_for_events(gateway.audit_folder / "audit.log", "110113", 1)
    assert alert.find("EventIdentification/EventTypeCode").get("csd-code") == "110132"
    named = [o.get("ParticipantObjectID") for o in alert.findall("ParticipantObjectIdentification")]
    assert target in named


def test_full_journal_with_the_arr_unreachable_never_fails_a_retrieval(
    orthanc: OrthancServer, study: SyntheticStudy, pki: Pki, tmp_path: Path
) -> None:
    dead = Rsyslog(tmp_path / "never-started", pki)  # its port: nothing listens there
    config = gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID: "orthanc"},
        extra={
            "audit": audit_tls(dead, pki, tmp_path, max_bytes=64 * 1024, segment_bytes=64 * 1024)
        },
    )
    instance = study.instances[0]
    with GatewayProcess(tmp_path / "gw", config) as gateway:
        url = (
            f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/studies/"
            f"{study.study_uid}/series/{instance.series_uid}/instances/{instance.sop_instance_uid}"
        )
        statuses = collections.Counter(get(url) for _ in range(120))
        assert statuses == {200: 120}
        assert gateway.metric("mado_gateway_audit_journal_full") == 1
        dropped = gateway.metric('mado_gateway_audit_dropped_total{reason="journal-full"}')
        assert dropped is not None
        assert dropped > 0
        with urllib.request.urlopen(gateway.url + "/readyz") as ready:
            assert ready.status == 200  # a full journal is not an unwritable one
        assert "audit journal cap reached" in gateway.log()


def _wait_for_studies(rsyslog: Rsyslog, expected: set[str], timeout_s: float) -> list[bytes]:
    """Every stored line, once each study of ``expected`` has an Instances Transferred."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = rsyslog.received()
        seen = {
            study_of(root) for root in (parse(line) for line in lines) if event_of(root) == "110104"
        }
        if expected <= seen or time.monotonic() > deadline:
            return lines
        time.sleep(0.5)


def _wait_for_events(log: Path, event_id: str, count: int, timeout_s: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        lines = log.read_bytes().split(b"\n")[:-1] if log.exists() else []
        roots = [r for r in (parse(line) for line in lines) if event_of(r) == event_id]
        if len(roots) >= count or time.monotonic() > deadline:
            assert len(roots) == count, f"{len(roots)} {event_id} messages in {log}"
            return roots
        time.sleep(0.1)
