"""Pure builders of the audit messages the gateway emits (DICOM PS3.15 A.5.3): the
inbound leg of a RAD-160 retrieval, Application Activity and Security Alert.

No I/O and no clock: every time comes from the arguments. The decisions below are the
gateway's reading of PS3.15 and the IHE Radiology audit rules; docs/audit.md gives every
message field by field. The other messages of an exchange are built in
:mod:`gateway.audit.transfers` (Begin Transferring, the outbound DICOMweb legs) and
:mod:`gateway.audit.retrieves` (SOAP retrieves, and the one dispatch from an exchange to all
its messages).

**DICOM Instances Transferred (110104) of the RAD-160 leg** — the gateway answering the
requester (PS3.15 A.5.3 "DICOM Instances Transferred"), from a finished
:class:`~gateway.exchange.Exchange`:

* Emitted only when an upstream was contacted (a URL of some leg requested,
  :attr:`~gateway.exchange.Exchange.contacted`): a request refused before that moved no
  instance. Refusals that matter for security are Security Alerts.
* ``EventTypeCode`` ``RAD-160`` alone: the outbound leg (RAD-107 to an Imaging Document
  Source, RAD-160 to a responding gateway, a SOAP leg) has a message of its own.
* Exactly one Source (110153): this gateway (``audit_source_id``, its host as network access
  point); exactly one Destination (110152): the requester (certificate subject, else address;
  ``UserIsRequestor`` true). See :mod:`gateway.audit.participants`.
* One message per patient (PS3.15: "may only include information about a single patient").
  Instances are grouped by (Patient ID, Issuer of Patient ID) as read from the stream
  (:class:`~gateway.instances.InstanceTally`); instances whose header gave no Patient ID
  form one group with the patient :data:`UNKNOWN_PATIENT_ID`. When no instance was seen
  at all (metadata, rendered, an aborted or failed transfer) there is one message, with the
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
* Objects (:mod:`gateway.audit.objects`): the patient's studies with SOP classes and counts
  and ``ihe:homeCommunityID``, the patient, and the request (its request id).

**Application Activity (110100)** at start and stop, **Security Alert (110113)** for refused
targets, TLS failures, rejected configuration reloads and the audit journal's own cap; an
alert raised while serving a request carries that request's object too.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from gateway.audit import codes
from gateway.audit.model import (
    ActionCode,
    AuditMessage,
    AuditSource,
    Event,
    ObjectRole,
    ObjectType,
    Outcome,
    Participant,
    ParticipantObject,
)
from gateway.audit.objects import (
    HOME_COMMUNITY_DETAIL,
    NOT_ITEMISED_DETAIL,
    UNKNOWN_PATIENT_ID,
    UNKNOWN_STUDY_UID,
    not_itemised_object,
    patient_cx,
    patient_object,
    request_object,
    request_of,
    study_objects,
)
from gateway.audit.participants import access_point, gateway_participant, requester_participant
from gateway.exchange import Exchange
from gateway.exchange import Outcome as ExchangeOutcome
from gateway.instances import PatientTally
from routing.model import Identity

__all__ = [
    "ALERT_DESCRIPTION_DETAIL",
    "HOME_COMMUNITY_DETAIL",
    "NOT_ITEMISED_DETAIL",
    "UNKNOWN_PATIENT_ID",
    "UNKNOWN_STUDY_UID",
    "AlertKind",
    "application_activity",
    "audit_source",
    "instances_transferred",
    "patient_cx",
    "patient_messages",
    "security_alert",
    "transfer_outcome",
]

ALERT_DESCRIPTION_DETAIL = "Alert Description"


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


def instances_transferred(
    exchange: Exchange, identity: Identity, *, host: str | None = None
) -> list[AuditMessage]:
    """The 110104 messages of ``exchange``'s inbound RAD-160 leg: none when no upstream was
    contacted, else one per patient (see the module docstring for every rule applied).
    ``host`` is the gateway's network access point."""
    if not exchange.contacted:
        return []
    duration = exchange.duration_s or 0.0
    event = Event(
        id=codes.INSTANCES_TRANSFERRED,
        action=ActionCode.READ,
        at=datetime.fromtimestamp(exchange.started_wall + duration, UTC),
        outcome=transfer_outcome(exchange),
        types=(codes.RAD_160,),
    )
    participants = (
        gateway_participant(identity, role=codes.SOURCE_ROLE, is_requestor=False, host=host),
        requester_participant(exchange),
    )
    return patient_messages(event, participants, identity, exchange)


def patient_messages(
    event: Event,
    participants: tuple[Participant, ...],
    identity: Identity,
    exchange: Exchange,
    *,
    only: frozenset[str] | None = None,
) -> list[AuditMessage]:
    """``event`` between ``participants`` once per patient of the exchange's tally (its
    studies, ``only`` those when given), plus the message of the instances not itemised;
    one message with the unknown patient when the tally is empty."""
    source = audit_source(identity)
    request = request_of(exchange)
    groups: list[tuple[str | None, str | None, PatientTally | None]] = [
        group
        for group in exchange.instances.patients()
        if only is None or _holds(exchange, group[2], only)
    ]
    if not groups:
        groups.append((None, None, None))
    messages = []
    for patient_id, issuer, tally in groups:
        patient = patient_object(patient_id, issuer, tally.name if tally is not None else None)
        studies = study_objects(exchange, tally, only=only)
        messages.append(
            AuditMessage(
                event=event,
                participants=participants,
                source=source,
                objects=(*studies, patient, request),
            )
        )
    # Instances past the tally's cap cannot be attributed to a study, hence not to one of
    # several legs: they are reported with the whole exchange only.
    if exchange.instances.not_itemised and only is None:
        messages.append(
            AuditMessage(
                event=event,
                participants=participants,
                source=source,
                objects=(not_itemised_object(exchange), patient_object(None), request),
            )
        )
    return messages


def _holds(exchange: Exchange, tally: PatientTally, studies: frozenset[str]) -> bool:
    return any((uid or exchange.study_uid) in studies for uid in tally.studies)


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
    request_id: str | None = None,
) -> AuditMessage:
    """A Security Alert (110113), PS3.15 A.5.3 "Security Alert".

    ``target`` (the refused URL, the peer, the configuration file as a URI) is the alert
    subject, ID type ``12`` URI, with ``description`` as its "Alert Description" detail.
    ``reporter`` is the gateway (the requestor of the alert); ``performer`` is whoever caused
    it, when known (a client address), with ``UserIsRequestor`` false. ``request_id`` names
    the request being served when the alert was raised (a request object follows the
    subject).
    """
    alert_type, outcome = _ALERTS[kind]
    participants = [Participant(user_id=reporter, is_requestor=True)]
    if performer:
        point, point_type = access_point(performer)
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
    objects = (subject,) if request_id is None else (subject, request_object(request_id))
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
        objects=objects,
    )
