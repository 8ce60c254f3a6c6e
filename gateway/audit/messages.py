"""Pure builders of the audit messages the gateway emits (DICOM PS3.15 A.5.3).

No I/O and no clock: every time comes from the arguments. The decisions below are the
gateway's reading of PS3.15 and the IHE Radiology audit rules; docs/audit.md explains them.

**DICOM Instances Transferred (110104)**, from a finished :class:`~gateway.exchange.Exchange`
(PS3.15 A.5.3 "DICOM Instances Transferred"):

* Emitted only when an upstream was contacted (a URL of some leg requested,
  :attr:`~gateway.exchange.Exchange.contacted`): a request refused before that moved no
  instance. Refusals that matter for security are Security Alerts.
* One message per patient (PS3.15: "may only include information about a single patient").
  Instances are grouped by (Patient ID, Issuer of Patient ID) as read from the stream
  (:class:`~gateway.instances.InstanceTally`); instances whose header gave no Patient ID
  form one group with the patient :data:`UNKNOWN_PATIENT_ID`. When no instance was seen at
  all (metadata, rendered, an aborted or failed transfer) there is one message, with the
  study from the request path and the unknown patient.
* Instances the tally could not itemise (past its cap on distinct patients, studies, series
  and SOP classes) are reported in one more message, patient :data:`UNKNOWN_PATIENT_ID` and
  study :data:`UNKNOWN_STUDY_UID`, whose study object carries their number as the detail
  :data:`NOT_ITEMISED_DETAIL` (decimal): never silently left out.
* ``EventActionCode`` ``R``: the gateway relays and cannot know whether the final receiver
  already held the instances, which PS3.15 says to record as ``R``.
* ``EventOutcomeIndicator`` from what happened (:func:`transfer_outcome`); every patient
  message of one exchange carries the same outcome, because a cut stream cannot say whose
  instance was cut.
* ``EventTypeCode`` names the IHE transactions of the legs the gateway took part in
  (:func:`transaction_codes`): the request always arrived in the XC-WADO grammar, so
  ``RAD-160`` is always first; when the gateway itself then called an Imaging Document Source
  (route ``source`` or ``retrieve-url``) ``RAD-107`` follows.
* Exactly one Source (110153): the upstream the instances came from (the exchange's last
  leg); exactly one Destination (110152): the requesting system the gateway relayed them to
  (``UserIsRequestor`` true).
* Study objects: type 2, role 3, ID type 110180, with the SOP classes and instance counts
  seen, and the community's homeCommunityId as detail ``ihe:homeCommunityID``. One patient
  object: type 1, role 1, ID type ``2`` RFC-3881 "Patient Number", ID as an HL7 v2 CX
  (:func:`patient_cx`).

**Application Activity (110100)** at start and stop, **Security Alert (110113)** for refused
targets, TLS failures, rejected configuration reloads and the audit journal's own cap.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from ipaddress import ip_address

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
from gateway.exchange import Exchange
from gateway.exchange import Outcome as ExchangeOutcome
from gateway.instances import PatientTally
from routing.ids import Oid
from routing.model import Identity
from routing.urls import parse_url

__all__ = [
    "HOME_COMMUNITY_DETAIL",
    "NOT_ITEMISED_DETAIL",
    "UNKNOWN_PATIENT_ID",
    "UNKNOWN_STUDY_UID",
    "AlertKind",
    "application_activity",
    "audit_source",
    "instances_transferred",
    "patient_cx",
    "security_alert",
    "transaction_codes",
    "transfer_outcome",
]

UNKNOWN_PATIENT_ID = "UNKNOWN"
"""Patient object ID when no relayed instance header named the patient."""

UNKNOWN_STUDY_UID = "UNKNOWN"
"""Study object ID when neither the request path nor an instance header named the study."""

HOME_COMMUNITY_DETAIL = "ihe:homeCommunityID"
NOT_ITEMISED_DETAIL = "mado-gateway:instancesNotItemised"
"""Study object detail: how many relayed instances the exchange could not itemise."""
ALERT_DESCRIPTION_DETAIL = "Alert Description"
_SOURCE_ROUTES = frozenset({"source", "retrieve-url"})
# The escape character comes first, so the escapes added after it are not escaped again.
_HL7_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


class AlertKind(enum.StrEnum):
    """Why a Security Alert is raised; each kind fixes the alert type code and outcome."""

    REFUSED_URL = "refused-url"  # a retrieveurl the URL policy does not allow
    REFUSED_REDIRECT = "refused-redirect"  # a redirect target the policy does not allow
    TLS_FAILURE = "tls-failure"  # TLS handshake or peer certificate failure
    CONFIG_REJECTED = "config-rejected"  # a configuration reload refused as invalid
    AUDIT_STOPPED = "audit-stopped"  # the audit journal cap was crossed: messages dropped
    AUDIT_RESUMED = "audit-resumed"  # the audit journal accepts messages again


_ALERTS: dict[AlertKind, tuple[codes.Code, Outcome]] = {
    AlertKind.REFUSED_URL: (codes.USE_OF_RESTRICTED_FUNCTION, Outcome.MINOR_FAILURE),
    AlertKind.REFUSED_REDIRECT: (codes.USE_OF_RESTRICTED_FUNCTION, Outcome.MINOR_FAILURE),
    AlertKind.TLS_FAILURE: (codes.NODE_AUTHENTICATION, Outcome.SERIOUS_FAILURE),
    AlertKind.CONFIG_REJECTED: (codes.SECURITY_CONFIGURATION, Outcome.MINOR_FAILURE),
    AlertKind.AUDIT_STOPPED: (codes.AUDIT_RECORDING_STOPPED, Outcome.MAJOR_FAILURE),
    AlertKind.AUDIT_RESUMED: (codes.AUDIT_RECORDING_STARTED, Outcome.SUCCESS),
}


def audit_source(identity: Identity) -> AuditSource:
    """``AuditSourceIdentification`` for this gateway (type 4, application server)."""
    return AuditSource(
        source_id=identity.audit_source_id, enterprise_site_id=identity.enterprise_site_id
    )


def transfer_outcome(exchange: Exchange) -> Outcome:
    """``EventOutcomeIndicator`` of a relayed retrieval.

    ====================================================  ====
    complete, 2xx other than 206                          0
    complete, 206 (some instances missing) or 4xx         4
    aborted after the first byte (upstream or client)     8
    failed (no upstream answer, or 5xx), anything else    12
    ====================================================  ====
    """
    status = exchange.status
    if exchange.outcome is ExchangeOutcome.COMPLETE:
        if 200 <= status < 300 and status != 206:
            return Outcome.SUCCESS
        if status == 206 or 400 <= status < 500:
            return Outcome.MINOR_FAILURE
        return Outcome.MAJOR_FAILURE
    if exchange.outcome is ExchangeOutcome.ABORTED:
        return Outcome.SERIOUS_FAILURE
    if exchange.outcome is ExchangeOutcome.FAILED and 400 <= status < 500:
        return Outcome.MINOR_FAILURE
    return Outcome.MAJOR_FAILURE


def transaction_codes(route_kind: str) -> tuple[codes.Code, ...]:
    """EventTypeCodes for an exchange routed as ``route_kind`` (see the module docstring)."""
    if route_kind in _SOURCE_ROUTES:
        return (codes.RAD_160, codes.RAD_107)
    return (codes.RAD_160,)


def patient_cx(patient_id: str, issuer: str | None) -> str:
    """The patient as an HL7 v2 CX: ``id^^^&oid&ISO`` when the issuer is an OID,
    ``id^^^issuer`` for any other issuer, ``id`` alone without one. HL7 delimiters inside
    the values are escaped (``\\S\\``, ``\\T\\``, ...) so they cannot shift components."""
    escaped = _hl7_escape(patient_id)
    if not issuer:
        return escaped
    issuer = issuer.strip()
    if Oid.is_valid(issuer):
        return f"{escaped}^^^&{Oid(issuer)}&ISO"
    return f"{escaped}^^^{_hl7_escape(issuer)}"


def instances_transferred(exchange: Exchange, identity: Identity) -> list[AuditMessage]:
    """The 110104 messages for ``exchange``: none when no upstream was contacted, else one
    per patient (see the module docstring for every rule applied)."""
    if not exchange.contacted:
        return []
    duration = exchange.duration_s or 0.0
    event = Event(
        id=codes.INSTANCES_TRANSFERRED,
        action=ActionCode.READ,
        at=datetime.fromtimestamp(exchange.started_wall + duration, UTC),
        outcome=transfer_outcome(exchange),
        types=transaction_codes(exchange.route_kind),
    )
    participants = (_upstream_participant(exchange), _requester_participant(exchange))
    source = audit_source(identity)
    groups: list[tuple[str | None, str | None, PatientTally | None]] = list(
        exchange.instances.patients()
    )
    if not groups:
        groups.append((None, None, None))
    messages = []
    for patient_id, issuer, tally in groups:
        patient = ParticipantObject(
            object_id=patient_cx(patient_id, issuer) if patient_id else UNKNOWN_PATIENT_ID,
            type_code=ObjectType.PERSON,
            role=ObjectRole.PATIENT,
            id_type=codes.PATIENT_NUMBER,
            name=tally.name if tally is not None else None,
        )
        studies = _studies(exchange, tally)
        messages.append(
            AuditMessage(
                event=event, participants=participants, source=source, objects=(*studies, patient)
            )
        )
    if exchange.instances.not_itemised:
        messages.append(
            AuditMessage(
                event=event,
                participants=participants,
                source=source,
                objects=(_not_itemised(exchange), _unknown_patient()),
            )
        )
    return messages


def application_activity(
    identity: Identity,
    *,
    started: bool,
    at: datetime,
    application: str,
    process_id: str | None = None,
    launcher: str | None = None,
) -> AuditMessage:
    """Application Start (110120) or Stop (110121), PS3.15 A.5.3 "Application Activity".

    ``application`` is the gateway's name as a participant (role 110150), with the process
    id as ``AlternativeUserID``; ``launcher`` (the operating-system user, role 110151) is the
    requestor when known.
    """
    participants = [
        Participant(
            user_id=application,
            alternative_user_id=process_id,
            is_requestor=False,
            roles=(codes.APPLICATION,),
        )
    ]
    if launcher:
        participants.append(
            Participant(user_id=launcher, is_requestor=True, roles=(codes.APPLICATION_LAUNCHER,))
        )
    return AuditMessage(
        event=Event(
            id=codes.APPLICATION_ACTIVITY,
            action=ActionCode.EXECUTE,
            at=at,
            outcome=Outcome.SUCCESS,
            types=(codes.APPLICATION_START if started else codes.APPLICATION_STOP,),
        ),
        participants=tuple(participants),
        source=audit_source(identity),
    )


def security_alert(
    identity: Identity,
    *,
    kind: AlertKind,
    target: str,
    description: str,
    at: datetime,
    reporter: str,
    performer: str | None = None,
) -> AuditMessage:
    """A Security Alert (110113), PS3.15 A.5.3 "Security Alert".

    ``target`` (the refused URL, the peer, the configuration file as a URI) is the alert
    subject, ID type ``12`` URI, with ``description`` as its "Alert Description" detail.
    ``reporter`` is the gateway (the requestor of the alert); ``performer`` is whoever caused
    it, when known (a client address), with ``UserIsRequestor`` false.
    """
    alert_type, outcome = _ALERTS[kind]
    participants = [Participant(user_id=reporter, is_requestor=True)]
    if performer:
        point, point_type = _access_point(performer)
        participants.append(
            Participant(
                user_id=performer,
                is_requestor=False,
                access_point=point,
                access_point_type=point_type,
            )
        )
    subject = ParticipantObject(
        object_id=target,
        type_code=ObjectType.SYSTEM_OBJECT,
        role=ObjectRole.SECURITY_RESOURCE,
        id_type=codes.URI,
        details=((ALERT_DESCRIPTION_DETAIL, description.encode("utf-8", "replace")),),
    )
    return AuditMessage(
        event=Event(
            id=codes.SECURITY_ALERT,
            action=ActionCode.EXECUTE,
            at=at,
            outcome=outcome,
            types=(alert_type,),
        ),
        participants=tuple(participants),
        source=audit_source(identity),
        objects=(subject,),
    )


def _studies(exchange: Exchange, tally: PatientTally | None) -> list[ParticipantObject]:
    by_study: dict[str, dict[str, int]] = {}
    for study_uid, study in (tally.studies if tally is not None else {}).items():
        # A header without a Study UID stands for the study of the request path.
        classes = by_study.setdefault(study_uid or exchange.study_uid or UNKNOWN_STUDY_UID, {})
        for uid, count in study.sop_classes().items():
            classes[uid] = classes.get(uid, 0) + count
    if not by_study:
        by_study[exchange.study_uid or UNKNOWN_STUDY_UID] = {}
    details = _community(exchange)
    return [
        ParticipantObject(
            object_id=study,
            type_code=ObjectType.SYSTEM_OBJECT,
            role=ObjectRole.REPORT,
            id_type=codes.STUDY_INSTANCE_UID,
            details=details,
            sop_classes=tuple(
                SopClassCount(uid=uid, count=count) for uid, count in sorted(classes.items())
            ),
        )
        for study, classes in by_study.items()
    ]


def _not_itemised(exchange: Exchange) -> ParticipantObject:
    count = str(exchange.instances.not_itemised).encode()
    return ParticipantObject(
        object_id=UNKNOWN_STUDY_UID,
        type_code=ObjectType.SYSTEM_OBJECT,
        role=ObjectRole.REPORT,
        id_type=codes.STUDY_INSTANCE_UID,
        details=(*_community(exchange), (NOT_ITEMISED_DETAIL, count)),
    )


def _unknown_patient() -> ParticipantObject:
    return ParticipantObject(
        object_id=UNKNOWN_PATIENT_ID,
        type_code=ObjectType.PERSON,
        role=ObjectRole.PATIENT,
        id_type=codes.PATIENT_NUMBER,
    )


def _community(exchange: Exchange) -> tuple[tuple[str, bytes], ...]:
    if not exchange.home_community_id:
        return ()
    return ((HOME_COMMUNITY_DETAIL, Oid(exchange.home_community_id).urn.encode()),)


def _upstream_participant(exchange: Exchange) -> Participant:
    leg = exchange.leg
    url = leg.url if leg is not None else None
    if leg is None or url is None:
        return Participant(
            user_id=leg.upstream if leg is not None else "unknown",
            is_requestor=False,
            roles=(codes.SOURCE_ROLE,),
        )
    # The query may carry a caller's retrieveurl; the path already names the study.
    try:
        parts = parse_url(url)
    except ValueError:  # never for a URL the relay vetted; the record must be written anyway
        parts = None
    user_id = leg.upstream if parts is None else parts.without_query
    point, point_type = _access_point(None if parts is None else parts.host)
    return Participant(
        user_id=user_id,
        alternative_user_id=leg.upstream,
        is_requestor=False,
        roles=(codes.SOURCE_ROLE,),
        access_point=point,
        access_point_type=point_type,
    )


def _requester_participant(exchange: Exchange) -> Participant:
    """The requesting system: its verified certificate subject when mutual TLS gave one
    (who), else its address; the address is always the network access point (where)."""
    client = (exchange.client or "").strip() or None
    point, point_type = _access_point(client)
    return Participant(
        user_id=exchange.client_subject or client or "unknown",
        is_requestor=True,
        roles=(codes.DESTINATION_ROLE,),
        access_point=point,
        access_point_type=point_type,
    )


def _access_point(host: str | None) -> tuple[str | None, NetworkAccessPointType | None]:
    if not host:
        return None, None
    bare = host.strip("[]")
    try:
        ip_address(bare)
    except ValueError:
        return host, NetworkAccessPointType.MACHINE_NAME
    return bare, NetworkAccessPointType.IP_ADDRESS


def _hl7_escape(value: str) -> str:
    for char, escape in _HL7_ESCAPES:
        value = value.replace(char, escape)
    return value
