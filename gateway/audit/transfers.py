"""Pure builders of two messages of a retrieval: DICOM Begin Transferring (110102) before its
first byte, and DICOM Instances Accessed (110103) for each outbound DICOMweb leg of a RAD-160
retrieval (PS3.15 A.5.3 "Begin Transferring DICOM Instances", "DICOM Instances Accessed").

No I/O and no clock: every time comes from the exchange.

**Begin Transferring (110102)**, :func:`begin_transferring`: journalled when the first leg's
answer is about to reach the requester, before its first byte
(:meth:`~gateway.exchange.Telemetry.answered`), so a retrieval cut short by a crash still
has a record; the Instances Transferred with its outcome follows at the end.

* ``EventActionCode`` ``E`` (PS3.15: Begin Transferring is an execution), outcome 0 (the
  transfer began), ``EventTypeCode`` the inbound transaction (RAD-160, RAD-69 or RAD-75).
* Source (110153) this gateway, Destination (110152) the requester (requestor), as on the
  110104 of the same leg (:mod:`gateway.audit.participants`).
* Objects: the studies asked for — the study of the request path (RAD-160), or the distinct
  studies of the requested documents (RAD-69 / RAD-75), at most :data:`MAX_STUDIES` per
  message (more are split) — the patient :data:`~gateway.audit.objects.UNKNOWN_PATIENT_ID`
  (no instance header has been read before the first byte; the requests carry none), and
  the request.

**Instances Accessed (110103) of a DICOMweb leg**, :func:`instances_accessed`: the gateway
as the requester of a RAD-107 (to an Imaging Document Source, routes ``source`` and
``retrieve-url``) or a RAD-160 (to a responding gateway, route ``relay``). RAD TF-3 Table
5.1-2 has the requester of RAD-69 / RAD-75 record 110103 (xcai-digest §2.11); the gateway
records its DICOMweb requests the same way (:mod:`gateway.audit.retrieves` for the SOAP
ones), so every leg it asks has one kind of message.

* ``EventActionCode`` ``R``: the gateway reads the instances to pass them on and keeps no
  copy. ``EventTypeCode``: the leg's transaction (:func:`leg_transaction`).
* Source (110153) the upstream (its endpoint, no identifiers), Destination (110152) this
  gateway (requestor).
* Outcome from the leg, as for a SOAP leg: a whole 2xx answer 0 (206: 4), 4xx 4, cut,
  stalled or abandoned mid-body (the client left) 8, no answer, 3xx or 5xx 12.
* One message per upstream and transaction (the legs to one upstream in one exchange are
  one conversation: failovers, a manifest's several paths), per patient, as the RAD-160
  110104 does, from the exchange's instance tally. With several such conversations, each
  reports the studies its requests named.
* Not emitted for a leg that sent no request (``leg.url`` None), nor for an upstream that
  answered for SOAP documents (its message is :func:`~gateway.audit.retrieves.
  documents_accessed`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.audit import codes
from gateway.audit.messages import audit_source, patient_messages
from gateway.audit.model import ActionCode, AuditMessage, Event, Outcome
from gateway.audit.objects import community_details, patient_object, request_of, study_object
from gateway.audit.participants import (
    gateway_participant,
    leg_participant,
    requester_participant,
)
from gateway.exchange import Exchange, Leg, StreamEnd
from routing.model import Identity

__all__ = [
    "BEGIN_TRANSFERRING_EVENT",
    "INBOUND_TRANSACTIONS",
    "MAX_STUDIES",
    "WEB_TRANSACTIONS",
    "begin_transferring",
    "instances_accessed",
    "leg_outcome",
    "leg_transaction",
]

MAX_STUDIES = 40
"""Study objects in one Begin Transferring message (as many as documents in a SOAP one)."""

BEGIN_TRANSFERRING_EVENT = "begin-transferring"
"""Journal event label (bounded: :data:`gateway.audit.metrics.EVENTS`)."""

INBOUND_TRANSACTIONS: dict[str, codes.Code] = {
    "RAD-160": codes.RAD_160,
    "RAD-69": codes.RAD_69,
    "RAD-75": codes.RAD_75,
}
WEB_TRANSACTIONS: dict[str, codes.Code] = {"RAD-107": codes.RAD_107, "RAD-160": codes.RAD_160}
_SOURCE_ROUTES = frozenset({"source", "retrieve-url"})
_CUT = frozenset({StreamEnd.TRUNCATED, StreamEnd.STALLED, StreamEnd.CLIENT})


def leg_transaction(exchange: Exchange, leg: Leg) -> str:
    """The IHE transaction of ``leg``: as recorded on it, else from the route — RAD-107
    for ``source`` and ``retrieve-url`` (an Imaging Document Source), RAD-160 otherwise."""
    if leg.transaction:
        return leg.transaction
    return "RAD-107" if exchange.route_kind in _SOURCE_ROUTES else "RAD-160"


def begin_transferring(
    exchange: Exchange, leg: Leg, identity: Identity, *, host: str | None = None
) -> list[AuditMessage]:
    """The 110102 messages of ``exchange`` whose first answered leg is ``leg`` (see the
    module docstring); empty for an inbound transaction this gateway does not answer."""
    inbound = INBOUND_TRANSACTIONS.get(exchange.transaction)
    if inbound is None:
        return []
    offset_s = leg.first_byte_s if leg.first_byte_s is not None else exchange.elapsed()
    event = Event(
        id=codes.BEGIN_TRANSFERRING,
        action=ActionCode.EXECUTE,
        at=datetime.fromtimestamp(exchange.started_wall + offset_s, UTC),
        outcome=Outcome.SUCCESS,
        types=(inbound,),
    )
    participants = (
        gateway_participant(identity, role=codes.SOURCE_ROLE, is_requestor=False, host=host),
        requester_participant(exchange),
    )
    if exchange.documents:
        asked = list(dict.fromkeys(d.study_uid.strip() for d in exchange.documents))
        details: tuple[tuple[str, bytes], ...] = ()
    else:
        asked = [exchange.study_uid or ""]
        details = community_details(exchange)
    source = audit_source(identity)
    tail = (patient_object(None), request_of(exchange))
    return [
        AuditMessage(
            event=event,
            participants=participants,
            source=source,
            objects=(
                *(study_object(uid, details=details) for uid in asked[start : start + MAX_STUDIES]),
                *tail,
            ),
        )
        for start in range(0, len(asked), MAX_STUDIES)
    ]


def instances_accessed(
    exchange: Exchange, identity: Identity, *, host: str | None = None
) -> list[AuditMessage]:
    """The 110103 messages of the outbound DICOMweb legs of a RAD-160 ``exchange`` (see the
    module docstring)."""
    by_documents = {d.upstream for d in exchange.documents if d.upstream is not None}
    conversations: dict[tuple[str, str], list[Leg]] = {}
    for leg in exchange.legs:
        transaction = leg_transaction(exchange, leg)
        if leg.url is None or transaction not in WEB_TRANSACTIONS:
            continue
        if leg.upstream in by_documents:
            continue
        conversations.setdefault((leg.upstream, transaction), []).append(leg)
    messages: list[AuditMessage] = []
    for (_, transaction), legs in conversations.items():
        last = legs[-1]
        end_s = last.end_s if last.end_s is not None else exchange.duration_s
        event = Event(
            id=codes.INSTANCES_ACCESSED,
            action=ActionCode.READ,
            at=datetime.fromtimestamp(exchange.started_wall + (end_s or 0.0), UTC),
            outcome=leg_outcome(last),
            types=(WEB_TRANSACTIONS[transaction],),
        )
        participants = (
            leg_participant(last),
            gateway_participant(
                identity, role=codes.DESTINATION_ROLE, is_requestor=True, host=host
            ),
        )
        only = None if len(conversations) == 1 else _studies_named(legs)
        messages.extend(patient_messages(event, participants, identity, exchange, only=only))
    return messages


def leg_outcome(leg: Leg) -> Outcome:
    """``EventOutcomeIndicator`` of one DICOMweb leg (see the module docstring)."""
    if leg.end in _CUT:
        return Outcome.SERIOUS_FAILURE
    status = leg.status
    if status is not None and 200 <= status < 300:
        return Outcome.MINOR_FAILURE if status == 206 else Outcome.SUCCESS
    if status is not None and 400 <= status < 500:
        return Outcome.MINOR_FAILURE
    return Outcome.MAJOR_FAILURE


def _studies_named(legs: list[Leg]) -> frozenset[str] | None:
    """The Study UIDs the legs' URLs name (the segment after ``studies``); None when one
    names none (a metadata request of a whole community, say): then all of them."""
    named = set()
    for leg in legs:
        segments = (leg.url or "").split("?", 1)[0].split("/")
        lowered = [segment.lower() for segment in segments]
        if "studies" not in lowered:
            return None
        index = lowered.index("studies")
        if index + 1 >= len(segments):
            return None
        named.add(segments[index + 1])
    return frozenset(named)
