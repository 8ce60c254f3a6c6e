"""The renderer and syslog framing reproduce the spec digest's sample S6 byte for byte, with
the ParticipantObjectName every object needs under PS3.15 A.5.1 as published (the sample, as
printed, passes only the corrected edition)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from gateway.audit import codes
from gateway.audit.model import (
    ActionCode,
    AuditMessage,
    AuditSource,
    Event,
    NetworkAccessPointType,
    ObjectRole,
    ObjectType,
    Outcome,
    Participant,
    ParticipantObject,
    SopClassCount,
)
from gateway.audit.render import render
from gateway.audit.syslog import SyslogHeader, format_message, frame, parse_frame
from tests.unit.audit.auditcheck import (
    check_instances_transferred,
    relax_ng,
    schema,
    validate,
    xml_of,
)

S6 = """\
1975 <85>1 2026-03-16T10:15:30.123Z rig.a.example.org xcwado-gw 4711 IHE+RFC-3881 - [BOM]<?xml version="1.0" encoding="UTF-8"?>
<AuditMessage>
 <EventIdentification EventActionCode="R" EventDateTime="2026-03-16T10:15:30.120Z" EventOutcomeIndicator="0">
  <EventID csd-code="110104" codeSystemName="DCM" originalText="DICOM Instances Transferred"/>
  <EventTypeCode csd-code="RAD-107" codeSystemName="IHE Transactions" originalText="WADO-RS Retrieve"/>
 </EventIdentification>
 <ActiveParticipant UserID="https://ids.a.example.org/pacs/wado-rs" UserIsRequestor="false" NetworkAccessPointID="ids.a.example.org" NetworkAccessPointTypeCode="1">
  <RoleIDCode csd-code="110153" codeSystemName="DCM" originalText="Source Role ID"/>
 </ActiveParticipant>
 <ActiveParticipant UserID="https://rig.a.example.org/wado-rs" UserIsRequestor="true" NetworkAccessPointID="192.0.2.10" NetworkAccessPointTypeCode="2">
  <RoleIDCode csd-code="110152" codeSystemName="DCM" originalText="Destination Role ID"/>
 </ActiveParticipant>
 <AuditSourceIdentification AuditEnterpriseSiteID="CommunityA" AuditSourceID="rig.a.example.org">
  <AuditSourceTypeCode csd-code="4"/>
 </AuditSourceIdentification>
 <ParticipantObjectIdentification ParticipantObjectID="1.2.3.4.5.1" ParticipantObjectTypeCode="2" ParticipantObjectTypeCodeRole="3">
  <ParticipantObjectIDTypeCode csd-code="110180" codeSystemName="DCM" originalText="Study Instance UID"/>
  <ParticipantObjectDetail type="ihe:homeCommunityID" value="dXJuOm9pZDo1LjYuNy44"/>
  <ParticipantObjectDescription>
   <SOPClass UID="1.2.840.10008.5.1.4.1.1.2" NumberOfInstances="2"/>
  </ParticipantObjectDescription>
 </ParticipantObjectIdentification>
 <ParticipantObjectIdentification ParticipantObjectID="PAT-0001^^^&amp;1.2.3.4.9&amp;ISO" ParticipantObjectTypeCode="1" ParticipantObjectTypeCodeRole="1">
  <ParticipantObjectIDTypeCode csd-code="2" codeSystemName="RFC-3881" originalText="Patient Number"/>
 </ParticipantObjectIdentification>
</AuditMessage>"""


def s6_message() -> AuditMessage:
    return AuditMessage(
        event=Event(
            id=codes.INSTANCES_TRANSFERRED,
            action=ActionCode.READ,
            at=datetime(2026, 3, 16, 10, 15, 30, 120000, tzinfo=UTC),
            outcome=Outcome.SUCCESS,
            types=(codes.RAD_107,),
        ),
        participants=(
            Participant(
                user_id="https://ids.a.example.org/pacs/wado-rs",
                is_requestor=False,
                access_point="ids.a.example.org",
                access_point_type=NetworkAccessPointType.MACHINE_NAME,
                roles=(codes.SOURCE_ROLE,),
            ),
            Participant(
                user_id="https://rig.a.example.org/wado-rs",
                is_requestor=True,
                access_point="192.0.2.10",
                access_point_type=NetworkAccessPointType.IP_ADDRESS,
                roles=(codes.DESTINATION_ROLE,),
            ),
        ),
        source=AuditSource(source_id="rig.a.example.org", enterprise_site_id="CommunityA"),
        objects=(
            ParticipantObject(
                object_id="1.2.3.4.5.1",
                type_code=ObjectType.SYSTEM_OBJECT,
                role=ObjectRole.REPORT,
                id_type=codes.STUDY_INSTANCE_UID,
                details=(("ihe:homeCommunityID", b"urn:oid:5.6.7.8"),),
                sop_classes=(SopClassCount(uid="1.2.840.10008.5.1.4.1.1.2", count=2),),
            ),
            ParticipantObject(
                object_id="PAT-0001^^^&1.2.3.4.9&ISO",
                type_code=ObjectType.PERSON,
                role=ObjectRole.PATIENT,
                id_type=codes.PATIENT_NUMBER,
            ),
        ),
    )


STUDY_NAME = "  <ParticipantObjectName>1.2.3.4.5.1</ParticipantObjectName>\n"
PATIENT_NAME = (
    "  <ParticipantObjectName>PAT-0001^^^&amp;1.2.3.4.9&amp;ISO</ParticipantObjectName>\n"
)


def s6_bytes() -> bytes:
    return S6.replace("[BOM]", "\ufeff").encode("utf-8")


def s6_named() -> bytes:
    """S6 with a ParticipantObjectName after each ParticipantObjectIDTypeCode (the object's
    ID: no other descriptor is known), and the octet count that follows."""
    lines = S6.replace("[BOM]", "\ufeff").splitlines(keepends=True)
    out: list[str] = []
    for line in lines:
        out.append(line)
        if "csd-code=\"110180\"" in line and "ParticipantObjectIDTypeCode" in line:
            out.append(STUDY_NAME)
        if "csd-code=\"2\"" in line and "ParticipantObjectIDTypeCode" in line:
            out.append(PATIENT_NAME)
    text = "".join(out)
    body = text.split(" ", 1)[1].encode("utf-8")
    return b"%d %s" % (len(body), body)


def test_s6_is_reproduced_byte_for_byte_with_the_names_the_published_edition_requires() -> None:
    header = SyslogHeader(hostname="rig.a.example.org", app_name="xcwado-gw", procid="4711")
    message = format_message(
        render(s6_message(), pretty=True),
        header=header,
        timestamp=datetime(2026, 3, 16, 10, 15, 30, 123000, tzinfo=UTC),
    )
    assert frame(message) == s6_named()
    assert len(message) == 1975 + len(STUDY_NAME) + len(PATIENT_NAME)


@pytest.mark.checklist(57)
def test_s6_as_printed_fails_the_published_edition_and_as_rendered_passes_both() -> None:
    printed = parse_frame(s6_bytes())
    assert printed is not None
    message, rest = printed
    assert rest == b""
    root = etree.fromstring(xml_of(message))
    assert schema().validate(root)
    assert relax_ng("corrected").validate(root)
    assert not relax_ng("published").validate(root)  # no ParticipantObjectName on an object
    rendered = parse_frame(s6_named())
    assert rendered is not None
    root = validate(xml_of(rendered[0]))  # every edition
    check_instances_transferred(root)


def test_compact_rendering_is_one_line_and_equivalent() -> None:
    compact = render(s6_message())
    assert b"\n" not in compact
    pretty = render(s6_message(), pretty=True)
    assert compact == b"".join(line.lstrip(b" ") for line in pretty.split(b"\n"))
    validate(compact)
