"""Helpers shared by the rsyslog tests and the child process they kill."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

from lxml import etree

from gateway.audit.settings import AuditSettings, parse_audit_settings
from gateway.exchange import Attempt, Exchange, InstanceSeen
from gateway.exchange import Outcome as ExchangeOutcome
from routing.ids import HomeCommunityId
from routing.model import Identity
from tests.unit.audit.auditcheck import validate, xml_of

IDENTITY = Identity(
    home_community_id=HomeCommunityId("5.6.7.8"),
    audit_source_id="rig.a.test",
    enterprise_site_id="CommunityA",
)
CT = "1.2.840.10008.5.1.4.1.1.2"
DICOM = 'multipart/related; type="application/dicom"'


def tls_settings(
    *, port: int, journal: str, ca: str, cert: str, key: str, **journal_extra: Any
) -> AuditSettings:
    return parse_audit_settings(
        {
            "audit": {
                "transport": "tls",
                "tls": {
                    "host": "127.0.0.1",
                    "port": port,
                    "ca_file": ca,
                    "cert_file": cert,
                    "key_file": key,
                    "settle_s": 0.2,
                    "connect_timeout_s": 2,
                },
                "journal": {"directory": journal, "fsync_interval_s": 0.05, **journal_extra},
                "syslog": {"hostname": "rig.a.test"},
                "retry": {"initial_s": 0.05, "max_s": 0.4},
                "stop_timeout_s": 10,
            }
        },
        source="test",
    )


def relayed(index: int, patients: tuple[str, ...] = ("PAT-1",)) -> Exchange:
    """A completed RIG→IDS exchange for study ``1.2.9.{index}``."""
    study = f"1.2.9.{index}"
    exchange = Exchange(request_id=f"r{index}", method="GET", path="/wado/x", client="127.0.0.1")
    exchange.route_kind = "source"
    leg = exchange.open_leg("ids-a")
    leg.url = f"https://ids.a.test/wado-rs/studies/{study}"
    exchange.home_community_id = "5.6.7.8"
    exchange.study_uid = study
    leg.attempts.append(Attempt(base_url="https://ids.a.test/wado-rs/", status=200))
    exchange.status = 200
    exchange.outcome = ExchangeOutcome.COMPLETE
    for identity in (
        InstanceSeen(
            sop_class_uid=CT,
            sop_instance_uid=f"{study}.1.{n}",
            study_uid=study,
            series_uid=f"{study}.1",
            patient_id=patient,
            patient_id_issuer="1.2.3.4.9",
            patient_name=None,
        )
        for n, patient in enumerate(patients)
    ):
        exchange.note_instance(identity)
    exchange.finish()
    return exchange


def parse(line: bytes) -> etree._Element:
    """Validate one stored syslog line and return its XML root."""
    return validate(xml_of(line))


def event_of(root: etree._Element) -> str:
    return str(root.find("EventIdentification/EventID").get("csd-code"))


def studies_in(lines: list[bytes]) -> list[str]:
    """The study UID of every 110104 message among ``lines``, in order."""
    out = []
    for line in lines:
        root = parse(line)
        if event_of(root) == "110104":
            study = root.find("ParticipantObjectIdentification[@ParticipantObjectTypeCodeRole='3']")
            out.append(str(study.get("ParticipantObjectID")))
    return out


def get(url: str) -> int:
    """A retrieval as a consumer makes it, read to the end; its status."""
    request = urllib.request.Request(url, headers={"Accept": DICOM})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
