"""Several audit destinations, each with its own cursor in one journal (issue acceptance).

Real peers: the gateway runs as its own process and is SIGKILLed; Orthanc is the Imaging
Document Source; two rsyslogd processes (mutual TLS) are two Audit Record Repositories, the
hospital's ARR (``arr``) and a security information system (``siem``).
"""

from __future__ import annotations

import collections
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import yaml

from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import make_study
from tests.functional.audit.auditpeer import event_of, get, parse
from tests.functional.audit.conftest import Pki, Rsyslog
from tests.unit.audit.auditcheck import check_instances_transferred

OWN = "5.6.7.8"
RLUID = "1.2.3.50"


def tls_of(server: Rsyslog, pki: Pki) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": server.tcp_port,
        "ca_file": pki.ca_file,
        "cert_file": pki.client_cert,
        "key_file": pki.client_key,
        "settle_s": 0.2,
        "connect_timeout_s": 2,
    }



def studies_of(lines: list[bytes]) -> list[str]:
    """The study of every Instances Transferred among ``lines``, each validated first."""
    out = []
    for line in lines:
        root = parse(line)
        if event_of(root) == "110104":
            check_instances_transferred(root)
            study = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='3']")
            out.append(str(study.get("ParticipantObjectID")))
    return out


def wait_for_studies(server: Rsyslog, expected: set[str], timeout_s: float = 60) -> list[bytes]:
    deadline = time.monotonic() + timeout_s
    while True:
        lines = server.received()
        if expected <= set(studies_of(lines)) or time.monotonic() > deadline:
            return lines
        time.sleep(0.3)


def cursor(journal: Path, name: str) -> int:
    return int((journal / "cursors" / name).read_text())


def test_a_second_destination_receives_every_event_while_the_first_is_down_across_a_sigkill(
    rsyslog: Rsyslog, pki: Pki, tmp_path: Path
) -> None:
    count = 300
    studies = [
        make_study(seed=f"dest-{n}", series_count=1, instances_per_series=1, rows=2, columns=2)
        for n in range(count)
    ]
    uids = [study.study_uid for study in studies]
    arr = rsyslog
    siem = Rsyslog(tmp_path / "siem", pki)
    siem.start()
    journal = tmp_path / "journal"
    try:
        with OrthancServer(tmp_path / "orthanc") as orthanc:
            orthanc.upload_all([s.instances[0].part10 for s in studies])
            config = gateway_config(
                home_community_id=OWN,
                port=free_port(),
                upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
                sources={RLUID: "orthanc"},
                extra={
                    "audit": {
                        "destinations": [
                            {"name": "arr", "transport": "tls", "tls": tls_of(arr, pki)},
                            {"name": "siem", "transport": "tls", "tls": tls_of(siem, pki)},
                        ],
                        "journal": {"directory": str(journal), "fsync_interval_s": 0.05},
                        "retry": {"initial_s": 0.05, "max_s": 0.5},
                        "stop_timeout_s": 20,
                    }
                },
            )
            gateway = GatewayProcess(tmp_path / "gw", config)

            def retrieve(numbers: range) -> None:
                for n in numbers:
                    instance = studies[n].instances[0]
                    url = (
                        f"{gateway.endpoint}homeCommunityId/{OWN}/RetrieveLocationUID/{RLUID}/"
                        f"studies/{uids[n]}/series/{instance.series_uid}/instances/"
                        f"{instance.sop_instance_uid}"
                    )
                    assert get(url) == 200

            def depth(name: str) -> float | None:
                return gateway.metric(
                    f'mado_gateway_audit_destination_queue_depth{{destination="{name}"}}'
                )

            with gateway:
                retrieve(range(0, 50))
                wait_for_studies(arr, set(uids[:50]))
                arr.stop()  # the first repository goes down ...
                retrieve(range(50, 150))
                # ... and the second receives every event meanwhile.
                lines = wait_for_studies(siem, set(uids[:150]))
                assert set(uids[:150]) <= set(studies_of(lines))
                arr_got = set(studies_of(arr.received()))
                assert arr_got.isdisjoint(uids[50:150])
                deadline = time.monotonic() + 10
                while depth("siem") != 0 and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert depth("siem") == 0
                assert (depth("arr") or 0) >= 100  # held back for the first only
                time.sleep(0.5)  # the group-commit thread stores the cursors
                assert cursor(journal, "arr") < cursor(journal, "siem")
                siem_before_kill = len(siem.received())

                gateway.kill()  # SIGKILL, the first repository still down
                gateway.__enter__()  # the same journal, each cursor where it was
                retrieve(range(150, count))
                lines = wait_for_studies(siem, set(uids))
                after_restart = studies_of(lines[siem_before_kill:])
                # The second destination resumed from its own cursor: nothing it had
                # confirmed before the kill came again (a shared cursor would resend 50-149).
                assert set(after_restart).isdisjoint(uids[:150]), sorted(
                    set(after_restart) & set(uids[:150])
                )
                assert set(uids) <= set(studies_of(lines))
                assert arr_got.isdisjoint(uids[50:])

                arr.start()  # the first comes back and receives every event too
                arr_lines = wait_for_studies(arr, set(uids))
            # leaving the block stops the gateway cleanly: both get Application Stop
            siem_lines = siem.wait_for(len(siem.received()) + 1, timeout_s=5)
            arr_lines = arr.received()
            log_tail = gateway.log()[-3000:]
    finally:
        siem.stop()

    report = []
    for name, stored in (("arr", arr_lines), ("siem", siem_lines)):
        per_study = collections.Counter(studies_of(stored))  # every message validates
        assert set(per_study) == set(uids), f"{name} lost {set(uids) - set(per_study)}\n{log_tail}"
        events = [event_of(parse(line)) for line in stored]
        assert events.count("110100") == 3  # start, (killed: no stop), start, stop
        duplicates = sum(n - 1 for n in per_study.values())
        assert max(per_study.values()) <= 3  # at least once, never a storm
        report.append(f"{name}: {len(stored)} messages, {duplicates} duplicates")
    final = {name: cursor(journal, name) for name in ("arr", "siem")}
    assert final["arr"] == final["siem"]  # both caught up with the whole journal
    print(f"\ntwo destinations, first down across a SIGKILL: {'; '.join(report)}")


def test_a_journal_written_by_a_newer_release_stops_the_gateway_with_a_message(
    tmp_path: Path,
) -> None:
    journal = tmp_path / "journal"
    journal.mkdir()
    future = b'{"v":2,"event":"security-alert","message":{}}'
    record = struct.pack(">II", len(future), zlib.crc32(future)) + future
    (journal / f"{0:020d}.seg").write_bytes(record)
    config = gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={"ids": {"protocol": "wado-rs", "base_urls": ["http://127.0.0.1:9/"]}},
        extra={"audit": {"journal": {"directory": str(journal)}}},
    )
    config_file = tmp_path / "gw.yaml"
    config_file.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot start: audit journal unusable" in result.stderr
    assert "version 2" in result.stderr
    assert (journal / f"{0:020d}.seg").read_bytes() == record  # kept for the newer release
