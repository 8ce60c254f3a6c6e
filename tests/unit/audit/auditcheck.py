"""Shared checks for audit tests: the XML schema kept beside this file, the PS3.15 A.5.1
RELAX NG schema of the shared reference folder, the PS3.15 content rules a schema cannot
state, and the settings of a service writing to a local file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

from gateway.audit.settings import AuditSettings, parse_audit_settings
from tests.samples import shared_file

SCHEMA_PATH = Path(__file__).with_name("dicom-audit-message.xsd")
BOM = b"\xef\xbb\xbf"


@cache
def schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMA_PATH)))


@cache
def relax_ng() -> etree.RelaxNG:
    """PS3.15 A.5.1 in RELAX NG, with ``(ParticipantObjectName | ParticipantObjectQuery)``
    optional as later editions have it (``schemas/README.md``): the edition as published
    requires one on every object, which no Study object of this gateway carries."""
    return etree.RelaxNG(etree.parse(str(shared_file("schemas/ps3.15-a.5.1-corrected.rng"))))


def validate(xml: bytes) -> etree._Element:
    """Parse and validate one audit XML document; raise AssertionError naming the problem."""
    root = etree.fromstring(xml)
    checker = schema()
    assert checker.validate(root), checker.error_log.filter_from_errors()
    for participant in root.iter("ActiveParticipant"):
        has_id = participant.get("NetworkAccessPointID") is not None
        has_type = participant.get("NetworkAccessPointTypeCode") is not None
        assert has_id == has_type, "NetworkAccessPointID and its type code go together"
    return root


def validate_both(xml: bytes) -> etree._Element:
    """:func:`validate`, then the shared RELAX NG schema (skips when the shared folder is
    absent, fails then under CI: ``tests.samples``)."""
    root = validate(xml)
    checker = relax_ng()
    assert checker.validate(root), checker.error_log.filter_from_errors()
    return root


def xml_of(syslog_message: bytes) -> bytes:
    """The XML part of an RFC 5424 audit message (after the BOM)."""
    index = syslog_message.index(BOM)
    return syslog_message[index + len(BOM) :]


def check_instances_transferred(root: etree._Element) -> None:
    """PS3.15 A.5.3 DICOM Instances Transferred rules (spec-digest checklist 46-50)."""
    assert root.find("EventIdentification/EventID").get("csd-code") == "110104"
    assert root.find("EventIdentification").get("EventActionCode") == "R"
    roles = [code.get("csd-code") for code in root.iter("RoleIDCode")]
    assert roles.count("110153") == 1
    assert roles.count("110152") == 1
    objects = root.findall("ParticipantObjectIdentification")
    patients = [o for o in objects if o.get("ParticipantObjectTypeCodeRole") == "1"]
    assert len(patients) == 1
    patient = patients[0]
    assert patient.get("ParticipantObjectTypeCode") == "1"
    id_type = patient.find("ParticipantObjectIDTypeCode")
    assert (id_type.get("csd-code"), id_type.get("codeSystemName")) == ("2", "RFC-3881")
    assert id_type.get("originalText") == "Patient Number"
    studies = [o for o in objects if o.get("ParticipantObjectTypeCodeRole") == "3"]
    assert studies
    for study in studies:
        assert study.get("ParticipantObjectTypeCode") == "2"
        assert study.find("ParticipantObjectIDTypeCode").get("csd-code") == "110180"


def settings_for(tmp_path: Path, **journal: object) -> AuditSettings:
    """Audit settings with one file destination and the journal under ``tmp_path``."""
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
