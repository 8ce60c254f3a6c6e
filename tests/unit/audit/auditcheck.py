"""Shared checks for audit tests: the XML schema kept beside this file, the PS3.15 A.5.1
RELAX NG schemas of the shared reference folder (the edition as published and as corrected),
the PS3.15 content rules a schema cannot state, and the settings of a service writing to a
local file. Every audit message a test parses goes through :func:`validate`, so every test
that builds messages from an exchange, in process or through a running gateway, checks them
against both editions."""

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
def relax_ng(edition: str) -> etree.RelaxNG:
    """PS3.15 A.5.1 in RELAX NG from the shared reference folder (``schemas/README.md``):
    ``published`` (ParticipantObjectName or ParticipantObjectQuery required on every object,
    as that edition printed it) or ``corrected`` (both optional, as later editions have it)."""
    path = shared_file(f"schemas/ps3.15-a.5.1-{edition}.rng")
    return etree.RelaxNG(etree.parse(str(path)))


EDITIONS = ("published", "corrected")


def validate(xml: bytes) -> etree._Element:
    """Parse one audit XML document and validate it against the XSD beside this file and
    both editions of the PS3.15 A.5.1 RELAX NG schema; raise AssertionError naming the
    problem (skips when the shared folder is absent, fails then under CI:
    ``tests.samples``)."""
    root = etree.fromstring(xml)
    checker = schema()
    assert checker.validate(root), checker.error_log.filter_from_errors()
    for edition in EDITIONS:
        grammar = relax_ng(edition)
        assert grammar.validate(root), (edition, grammar.error_log.filter_from_errors())
    for participant in root.iter("ActiveParticipant"):
        has_id = participant.get("NetworkAccessPointID") is not None
        has_type = participant.get("NetworkAccessPointTypeCode") is not None
        assert has_id == has_type, "NetworkAccessPointID and its type code go together"
    return root


validate_both = validate
"""The name earlier tests use: :func:`validate` checks every schema."""


def request_id_of(root: etree._Element) -> str | None:
    """The request id a message carries (its ``XrequestId`` object), or None."""
    for obj in root.iter("ParticipantObjectIdentification"):
        if obj.find("ParticipantObjectIDTypeCode").get("csd-code") == "XrequestId":
            return str(obj.get("ParticipantObjectID"))
    return None


def roles_of(root: etree._Element) -> dict[str, etree._Element]:
    """The active participants by role code; asserts one Source and one Destination."""
    out: dict[str, etree._Element] = {}
    for participant in root.iter("ActiveParticipant"):
        for role in participant.iter("RoleIDCode"):
            code = str(role.get("csd-code"))
            assert code not in out, f"two participants in role {code}"
            out[code] = participant
    return out


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
