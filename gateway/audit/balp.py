"""A journalled audit record as a FHIR R4 AuditEvent, following IHE Basic Audit Log Patterns
(BALP, ITI TF Supplement; FHIR R4 §6.4 AuditEvent and its DICOM mapping). Pure: no I/O.

The PS3.15 message maps element by element (the FHIR AuditEvent "DICOM" mapping):

=====================================  ======================================================
EventID, EventActionCode               ``type`` (DCM), ``action``
EventDateTime, EventOutcomeIndicator   ``recorded`` (an instant, UTC), ``outcome`` (0/4/8/12)
EventTypeCode                          ``subtype`` (an IHE transaction: ``urn:ihe:event-type-code``)
ActiveParticipant                      ``agent``: ``type`` from the role ID codes,
                                       ``who.identifier`` = UserID, ``altId``, ``name``,
                                       ``requestor``, ``network`` (address and type 1/2/5)
AuditSourceIdentification              ``source``: ``observer.display`` = AuditSourceID,
                                       ``site``, ``type`` (security-source-type)
ParticipantObjectIdentification        ``entity``: ``what.identifier`` (its ``type`` = the
                                       object ID type code), ``type``, ``role``, ``name``,
                                       ``detail`` (base64 values; SOP classes as strings)
=====================================  ======================================================

BALP additions: ``meta.profile`` names ``IHE.BasicAudit.PatientRead`` for a read (``R``) with
a patient, ``IHE.BasicAudit.Read`` for another read, ``IHE.BasicAudit.Create`` … likewise;
events with no BALP pattern (Application Activity, Security Alert) name none. The exchange's
request id is an entity of BALP type ``XrequestId``, so a resend can be told from a new event.

A version-0 record (a rendered syslog frame) has no AuditEvent form: :func:`render_fhir`
returns None and the sender skips it as ``not-applicable``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from gateway.audit import codes
from gateway.audit.codes import Code
from gateway.audit.model import (
    ActionCode,
    AuditMessage,
    ObjectRole,
    Participant,
    ParticipantObject,
)
from gateway.audit.record import AuditRecord, LegacyFrame
from gateway.audit.render import format_datetime

__all__ = ["BALP_PROFILES", "audit_event", "render_fhir"]

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_IHE_EVENT_TYPES = "urn:ihe:event-type-code"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"
_BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
_SCHEMES = {"DCM": _DCM, "IHE Transactions": _IHE_EVENT_TYPES}

BALP_PROFILES = {
    ActionCode.CREATE: "Create",
    ActionCode.READ: "Read",
    ActionCode.UPDATE: "Update",
    ActionCode.DELETE: "Delete",
}
"""The BALP pattern of each action; a message with a patient takes the Patient… variant."""

_SOURCE_TYPE_NAMES = {
    "1": "User Device",
    "2": "Data Interface",
    "3": "Web Server",
    "4": "Application Server",
    "5": "Database Server",
    "6": "Security Server",
    "7": "Network Device",
    "8": "Network Router",
    "9": "Other",
}
_ENTITY_TYPE_NAMES = {1: "Person", 2: "System Object", 3: "Organization", 4: "Other"}
_ROLE_NAMES = {1: "Patient", 3: "Report", 13: "Security Resource"}


def render_fhir(entry: AuditRecord | LegacyFrame, /) -> bytes | None:
    """The AuditEvent JSON bytes of a journalled record (a :class:`Renderer`); None for a
    version-0 frame. Raises ``ValueError`` for a record it cannot map (a naive time)."""
    if isinstance(entry, LegacyFrame):
        return None
    return json.dumps(audit_event(entry), separators=(",", ":")).encode("utf-8")


def audit_event(record: AuditRecord) -> dict[str, Any]:
    """The AuditEvent resource of ``record`` (see the module docstring)."""
    message = record.message
    event = message.event
    if event.at.tzinfo is None:
        raise ValueError("the event time has no time zone")
    resource: dict[str, Any] = {"resourceType": "AuditEvent"}
    profile = _profile(message)
    if profile is not None:
        resource["meta"] = {"profile": [profile]}
    resource["type"] = _coding(event.id)
    if event.types:
        resource["subtype"] = [_coding(code) for code in event.types]
    resource["action"] = event.action.value
    resource["recorded"] = _instant(record)
    resource["outcome"] = str(int(event.outcome))
    if event.outcome_description:
        resource["outcomeDesc"] = event.outcome_description
    resource["agent"] = [_agent(p) for p in message.participants]
    resource["source"] = _source(message)
    # The exchange's request object (objects.request_object) is BALP's XrequestId entity;
    # a record from before messages carried one gets that entity from the record.
    entities = [
        _request_entity(o.object_id) if o.id_type == codes.X_REQUEST_ID else _entity(o)
        for o in message.objects
    ]
    carried = any(o.id_type == codes.X_REQUEST_ID for o in message.objects)
    if record.request_id is not None and not carried:
        entities.append(_request_entity(record.request_id))
    if entities:
        resource["entity"] = entities
    return resource


def _profile(message: AuditMessage) -> str | None:
    pattern = BALP_PROFILES.get(message.event.action)
    if pattern is None or message.event.id.code not in ("110103", "110104", "110106"):
        return None
    if any(o.role is ObjectRole.PATIENT for o in message.objects):
        pattern = "Patient" + pattern
    return _BALP + pattern


def _instant(record: AuditRecord) -> str:
    return format_datetime(record.message.event.at)


def _coding(code: Code) -> dict[str, str]:
    system = _SCHEMES.get(code.scheme, f"urn:mado-gateway:code-scheme:{code.scheme}")
    return {"system": system, "code": code.code, "display": code.text}


def _agent(participant: Participant) -> dict[str, Any]:
    agent: dict[str, Any] = {}
    if participant.roles:
        agent["type"] = {"coding": [_coding(role) for role in participant.roles]}
    agent["who"] = {"identifier": {"value": participant.user_id}}
    if participant.alternative_user_id:
        agent["altId"] = participant.alternative_user_id
    if participant.user_name:
        agent["name"] = participant.user_name
    agent["requestor"] = participant.is_requestor
    if participant.access_point:
        network: dict[str, str] = {"address": participant.access_point}
        if participant.access_point_type is not None:
            network["type"] = str(int(participant.access_point_type))
        agent["network"] = network
    return agent


def _source(message: AuditMessage) -> dict[str, Any]:
    source: dict[str, Any] = {}
    if message.source.enterprise_site_id:
        source["site"] = message.source.enterprise_site_id
    source["observer"] = {"display": message.source.source_id}
    source["type"] = [
        {"system": _SOURCE_TYPE, "code": code, "display": _SOURCE_TYPE_NAMES.get(code, code)}
        for code in message.source.type_codes
    ]
    return source


def _request_entity(request_id: str) -> dict[str, Any]:
    return {
        "what": {"identifier": {"value": request_id}},
        "type": {"system": _BALP_ENTITY_TYPE, "code": "XrequestId"},
    }


def _entity(obj: ParticipantObject) -> dict[str, Any]:
    identifier: dict[str, Any] = {"value": obj.object_id}
    identifier["type"] = {"coding": [_coding(obj.id_type)]}
    entity: dict[str, Any] = {"what": {"identifier": identifier}}
    code = int(obj.type_code)
    entity["type"] = {
        "system": _ENTITY_TYPE,
        "code": str(code),
        "display": _ENTITY_TYPE_NAMES.get(code, str(code)),
    }
    if obj.role is not None:
        role = int(obj.role)
        entity["role"] = {
            "system": _OBJECT_ROLE,
            "code": str(role),
            "display": _ROLE_NAMES.get(role, str(role)),
        }
    if obj.name:
        entity["name"] = obj.name
    details: list[dict[str, str]] = [
        {"type": name, "valueBase64Binary": base64.b64encode(value).decode("ascii")}
        for name, value in obj.details
    ]
    details += [
        {"type": "SOPClass", "valueString": f"{sop.uid} ({sop.count} instances)"}
        for sop in obj.sop_classes
    ]
    if details:
        entity["detail"] = details
    return entity
