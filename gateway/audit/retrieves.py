"""Pure builders of the audit messages of a SOAP retrieve (RAD-69 / RAD-75), and the one
dispatch from a finished exchange to its audit messages (:func:`messages_for`).

No I/O and no clock: every time comes from the exchange. Rules (xcai-digest.md §2.11,
PS3.15 A.5.3 "DICOM Instances Accessed" and "DICOM Instances Transferred"); the digest marks
the gateway mapping UNCONFIRMED beyond RAD TF-3 Table 5.1-2, so these are the gateway's
reading, explained in docs/audit.md:

**Which events.** RAD TF-3 Table 5.1-2 has the actor that *answers* RAD-69 (Imaging Document
Source) or RAD-75 (Responding Imaging Gateway) record DICOM Instances Transferred (110104),
and the actor that *asks* (Imaging Document Consumer, Initiating Imaging Gateway) record DICOM
Instances Accessed (110103). The gateway plays both sides of one exchange, so it records
both, one message per transaction leg:

* the inbound transaction (``exchange.transaction``): it answers RAD-69 (an IIG toward a local
  consumer, or a responder serving its own community) or RAD-75 (an RIG) →
  **110104** (:func:`documents_transferred`), ``EventTypeCode`` the inbound transaction alone;
* each outbound leg that answered for documents → **110103** (:func:`documents_accessed`):
  a SOAP leg (RAD-69 to an Imaging Document Source, RAD-75 to a Responding Imaging
  Gateway), or a DICOMweb leg that fetched documents for the SOAP answer (RAD-107 to a
  source, RAD-160 to a gateway: the bridge), ``EventTypeCode`` the leg's transaction;
* a RAD-160 the gateway bridged to a SOAP leg: the 110103 of that leg here, and the RAD-160
  messages of :mod:`gateway.audit.messages` (110104) and :mod:`gateway.audit.transfers`.

**EventActionCode R for both.** 110104: PS3.15 says R when the audit source is not the
receiver or cannot know whether the receiver held copies, as for every relay here. 110103:
PS3.15 allows C, R, U or D; IPF's consumers write C (an Imaging Document Consumer typically
imports what it retrieves), but the gateway reads the instances to pass them on and keeps
no copy (a spool file lives only as long as the response it feeds), so it records R.

**Participants.** As IPF does and the digest notes, Source and Destination follow the images,
not the HTTP direction (:mod:`gateway.audit.participants`): Source (110153, ``UserIsRequestor``
false) is the party that sent the images, Destination (110152) the one that asked for them.
110104: Source = this gateway (``audit_source_id``, its host as network access point),
Destination = the requester (its verified certificate subject, else its address; requestor).
110103: Source = the upstream (its endpoint URL without query or identifiers, host as access
point, configured name as AlternativeUserID), Destination = this gateway (requestor).

**Objects.** One Study object per requested document (type 2, role 3, ID type 110180,
ParticipantObjectID = its Study Instance UID) with the ParticipantObjectDetail entries IHE
audit messages use for XDS-I documents: :data:`DOCUMENT_UID_DETAIL`,
:data:`SERIES_UID_DETAIL`, :data:`REPOSITORY_DETAIL` and the homeCommunityId as
``ihe:homeCommunityID`` on a RAD-69 message or :data:`XCA_COMMUNITY_DETAIL` on a RAD-75 one
(``urn:oid:`` form); a document that was not returned also carries its RegistryError code as
:data:`ERROR_CODE_DETAIL`. No SOPClass entries: the request names no SOP class and the tally
counts per series, not per document. One patient object (type 1, role 1, ID type RFC-3881
"Patient Number", HL7 CX as :func:`~gateway.audit.objects.patient_cx` writes it), and the
request object (:func:`~gateway.audit.objects.request_object`: the exchange's request id).

**One message per outcome set and per patient.** A RAD-69/75 request carries no patient id
(digest §2.11): a returned document's patient is the one whose relayed instances (the
exchange's :class:`~gateway.instances.InstanceTally`, read from the DICOM headers) hold its
study and series, else its study, when exactly one patient does. Documents are grouped by
(returned or not, patient); every failed document, and every returned one whose patient is
not known that way (study not in the tally, past its cap, or held by two patients), goes into
a message whose patient is :data:`~gateway.audit.messages.UNKNOWN_PATIENT_ID`: emitted,
never dropped. A group of more than :data:`MAX_DOCUMENTS` documents is split.

**Outcome** (``EventOutcomeIndicator``) per set. 110104, from the exchange: complete → 0 for
the returned set, 4 for the failed set; otherwise, for both sets, what
:func:`~gateway.audit.messages.transfer_outcome` says (8 aborted after the first byte, 12
failed, 4 failed with a 4xx), since a cut stream cannot say whose document was cut. 110103,
from the leg: a whole 2xx answer → 0 returned, 4 failed; 4xx → 4; an answer cut, stalled or
abandoned mid-body → 8; no answer, 3xx or 5xx → 12.

Not emitted: 110104 for an exchange refused before it was served or that recorded no
document (nothing was asked that PS3.15 could name: a message needs at least one study);
110103 for a leg that never sent a request (``leg.url`` None) or answered for no document.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from gateway.audit import codes
from gateway.audit.messages import audit_source, instances_transferred, transfer_outcome
from gateway.audit.model import (
    ActionCode,
    AuditMessage,
    Event,
    Outcome,
    Participant,
    ParticipantObject,
)
from gateway.audit.objects import (
    HOME_COMMUNITY_DETAIL,
    patient_object,
    request_of,
    study_object,
)
from gateway.audit.participants import (
    gateway_participant,
    leg_participant,
    requester_participant,
)
from gateway.audit.transfers import (
    WEB_TRANSACTIONS,
    instances_accessed,
    leg_transaction,
)
from gateway.exchange import DocumentOutcome, Exchange, Leg, StreamEnd
from gateway.exchange import Outcome as ExchangeOutcome
from gateway.instances import InstanceTally
from routing.ids import Oid
from routing.model import Identity

__all__ = [
    "DOCUMENT_UID_DETAIL",
    "ERROR_CODE_DETAIL",
    "INSTANCES_ACCESSED_EVENT",
    "INSTANCES_TRANSFERRED_EVENT",
    "MAX_DOCUMENTS",
    "MAX_ERROR_CODE",
    "REPOSITORY_DETAIL",
    "SERIES_UID_DETAIL",
    "SOAP_TRANSACTIONS",
    "XCA_COMMUNITY_DETAIL",
    "documents_accessed",
    "documents_transferred",
    "messages_for",
]

MAX_DOCUMENTS = 40
"""Study objects (one per document) in one message. With identifiers of conforming length
(UIDs of at most 64 characters) a message then stays under the 65,507-octet RFC 5426
datagram and the 64 KiB message limit ARRs are commonly configured with; a test checks it."""

MAX_ERROR_CODE = 128
"""Characters of an upstream's RegistryError code kept in :data:`ERROR_CODE_DETAIL`."""

DOCUMENT_UID_DETAIL = "ihe:DocumentUniqueId"
SERIES_UID_DETAIL = "Series Instance Unique Id"
REPOSITORY_DETAIL = "Repository Unique Id"
XCA_COMMUNITY_DETAIL = "urn:ihe:iti:xca:2010:homeCommunityId"
ERROR_CODE_DETAIL = "mado-gateway:registryErrorCode"
"""Study object detail of a document not returned: the RegistryError code reported for it."""

INSTANCES_TRANSFERRED_EVENT = "instances-transferred"
INSTANCES_ACCESSED_EVENT = "instances-accessed"
"""Journal event labels (bounded: :data:`gateway.audit.metrics.EVENTS`)."""

SOAP_TRANSACTIONS: dict[str, codes.Code] = {"RAD-69": codes.RAD_69, "RAD-75": codes.RAD_75}
"""The SOAP retrieve transactions and their EventTypeCodes."""

_COMMUNITY_DETAILS = {"RAD-75": XCA_COMMUNITY_DETAIL}  # any other: ihe:homeCommunityID
_CUT = frozenset({StreamEnd.TRUNCATED, StreamEnd.STALLED, StreamEnd.CLIENT})

_Patient = tuple[str, str | None, str | None]  # Patient ID, its issuer, the name a header gave
_Set = tuple[bool, _Patient | None, list[DocumentOutcome]]  # failed?, patient, documents


def messages_for(
    exchange: Exchange, identity: Identity, *, host: str | None = None
) -> Iterator[tuple[str, AuditMessage]]:
    """Every audit message of a finished exchange, one per transaction leg (and per outcome
    set, patient and size where a leg needs several), each with its journal event label.

    The outbound legs come first, labelled :data:`INSTANCES_ACCESSED_EVENT`:
    :func:`documents_accessed` (legs that answered for SOAP documents) and, for a RAD-160
    exchange, :func:`~gateway.audit.transfers.instances_accessed` (its DICOMweb legs). Then
    the inbound leg, labelled :data:`INSTANCES_TRANSFERRED_EVENT`:
    :func:`documents_transferred` for RAD-69 or RAD-75,
    :func:`~gateway.audit.messages.instances_transferred` for RAD-160. ``host`` is the
    gateway's network access point. Raises nothing the exchange's content could cause.

    Lazy: the messages of one leg are built when the caller reaches them, so a SOAP retrieve
    of 2,000 documents never holds all its messages at once.
    """
    for message in documents_accessed(exchange, identity, host=host):
        yield INSTANCES_ACCESSED_EVENT, message
    if exchange.transaction in SOAP_TRANSACTIONS:
        for message in documents_transferred(exchange, identity, host=host):
            yield INSTANCES_TRANSFERRED_EVENT, message
        return
    for message in instances_accessed(exchange, identity, host=host):
        yield INSTANCES_ACCESSED_EVENT, message
    for message in instances_transferred(exchange, identity, host=host):
        yield INSTANCES_TRANSFERRED_EVENT, message


def documents_transferred(
    exchange: Exchange, identity: Identity, *, host: str | None = None
) -> list[AuditMessage]:
    """The 110104 messages of the gateway's answer to ``exchange.transaction`` (RAD-69 or
    RAD-75): one per outcome set, patient and :data:`MAX_DOCUMENTS` documents; empty for an
    exchange that is not a SOAP retrieve, was refused, or recorded no document."""
    inbound = SOAP_TRANSACTIONS.get(exchange.transaction)
    if inbound is None or not exchange.documents or exchange.outcome is ExchangeOutcome.REFUSED:
        return []
    participants = (
        gateway_participant(identity, role=codes.SOURCE_ROLE, is_requestor=False, host=host),
        requester_participant(exchange),
    )
    at = _moment(exchange, exchange.duration_s)
    return [
        _message(
            Event(
                id=codes.INSTANCES_TRANSFERRED,
                action=ActionCode.READ,
                at=at,
                outcome=_exchange_outcome(exchange, failed=failed),
                types=(inbound,),
            ),
            participants,
            identity,
            exchange,
            documents=documents,
            patient=patient,
            transaction=exchange.transaction,
        )
        for failed, patient, documents in _sets(exchange.documents, exchange.instances)
    ]


def documents_accessed(
    exchange: Exchange, identity: Identity, *, host: str | None = None
) -> list[AuditMessage]:
    """The 110103 messages of the gateway's outbound legs that answered for documents: per
    upstream asked (its latest leg of a SOAP or DICOMweb transaction that sent a request),
    the documents it answered for, one message per outcome set, patient and
    :data:`MAX_DOCUMENTS` documents."""
    legs: dict[str, Leg] = {}
    for leg in exchange.legs:
        transaction = leg_transaction(exchange, leg)
        known = transaction in SOAP_TRANSACTIONS or transaction in WEB_TRANSACTIONS
        if known and leg.url is not None:
            legs[leg.upstream] = leg
    messages = []
    for name, leg in legs.items():
        transaction = leg_transaction(exchange, leg)
        answered = [document for document in exchange.documents if document.upstream == name]
        participants = (
            leg_participant(leg),
            gateway_participant(
                identity, role=codes.DESTINATION_ROLE, is_requestor=True, host=host
            ),
        )
        at = _moment(exchange, leg.end_s if leg.end_s is not None else exchange.duration_s)
        code = SOAP_TRANSACTIONS.get(transaction) or WEB_TRANSACTIONS[transaction]
        for failed, patient, documents in _sets(answered, exchange.instances):
            event = Event(
                id=codes.INSTANCES_ACCESSED,
                action=ActionCode.READ,
                at=at,
                outcome=_leg_outcome(leg, failed=failed),
                types=(code,),
            )
            messages.append(
                _message(
                    event,
                    participants,
                    identity,
                    exchange,
                    documents=documents,
                    patient=patient,
                    transaction=transaction,
                )
            )
    return messages


def _message(
    event: Event,
    participants: tuple[Participant, ...],
    identity: Identity,
    exchange: Exchange,
    *,
    documents: Sequence[DocumentOutcome],
    patient: _Patient | None,
    transaction: str,
) -> AuditMessage:
    community = _COMMUNITY_DETAILS.get(transaction, HOME_COMMUNITY_DETAIL)
    return AuditMessage(
        event=event,
        participants=participants,
        source=audit_source(identity),
        objects=(
            *(_study(document, community) for document in documents),
            _patient(patient),
            request_of(exchange),
        ),
    )


def _sets(documents: Sequence[DocumentOutcome], tally: InstanceTally) -> Iterator[_Set]:
    """The documents grouped by (failed, patient), returned sets first, each group in
    request order and cut into runs of at most :data:`MAX_DOCUMENTS`."""
    owner = _Owners(tally)
    groups: dict[tuple[bool, _Patient | None], list[DocumentOutcome]] = {}
    for document in documents:
        failed = document.error_code is not None
        patient = None if failed else owner.of(document)
        groups.setdefault((failed, patient), []).append(document)
    for (failed, patient), members in sorted(groups.items(), key=lambda group: group[0][0]):
        for start in range(0, len(members), MAX_DOCUMENTS):
            yield failed, patient, members[start : start + MAX_DOCUMENTS]


class _Owners:
    """Which patient's relayed instances hold a document's series, else its study."""

    __slots__ = ("_by_series", "_by_study")

    def __init__(self, tally: InstanceTally) -> None:
        self._by_series: dict[tuple[str, str], list[_Patient]] = {}
        self._by_study: dict[str, list[_Patient]] = {}
        for patient_id, issuer, patient in tally.patients():
            if patient_id is None:  # headers without a Patient ID name nobody
                continue
            key = (patient_id, issuer, patient.name)
            for study_uid, study in patient.studies.items():
                if study_uid is None:
                    continue
                self._by_study.setdefault(study_uid.strip(), []).append(key)
                for series_uid in study.series:
                    if series_uid is not None:
                        pair = (study_uid.strip(), series_uid.strip())
                        self._by_series.setdefault(pair, []).append(key)

    def of(self, document: DocumentOutcome) -> _Patient | None:
        """The one patient holding the document's series (else study); None when no patient
        or more than one does."""
        study = document.study_uid.strip()
        owners = self._by_series.get((study, document.series_uid.strip()))
        if owners is None:
            owners = self._by_study.get(study, [])
        return owners[0] if len(owners) == 1 else None


def _study(document: DocumentOutcome, community: str) -> ParticipantObject:
    details = [
        (DOCUMENT_UID_DETAIL, document.document_uid),
        (SERIES_UID_DETAIL, document.series_uid),
        (REPOSITORY_DETAIL, document.repository_id),
    ]
    if document.home_community_id:
        details.append((community, _urn(document.home_community_id)))
    if document.error_code is not None:
        details.append((ERROR_CODE_DETAIL, document.error_code[:MAX_ERROR_CODE]))
    return study_object(
        document.study_uid,
        details=tuple((kind, value.encode("utf-8", "replace")) for kind, value in details if value),
    )


def _patient(patient: _Patient | None) -> ParticipantObject:
    if patient is None:
        return patient_object(None)
    return patient_object(*patient)


def _exchange_outcome(exchange: Exchange, *, failed: bool) -> Outcome:
    overall = transfer_outcome(exchange)
    if exchange.outcome is ExchangeOutcome.COMPLETE and overall is not Outcome.MAJOR_FAILURE:
        return Outcome.MINOR_FAILURE if failed else Outcome.SUCCESS
    return overall


def _leg_outcome(leg: Leg, *, failed: bool) -> Outcome:
    if leg.end in _CUT:
        return Outcome.SERIOUS_FAILURE
    status = leg.status
    if status is not None and 200 <= status < 300:
        return Outcome.MINOR_FAILURE if failed else Outcome.SUCCESS
    if status is not None and 400 <= status < 500:
        return Outcome.MINOR_FAILURE
    return Outcome.MAJOR_FAILURE


def _moment(exchange: Exchange, offset_s: float | None) -> datetime:
    return datetime.fromtimestamp(exchange.started_wall + (offset_s or 0.0), UTC)


def _urn(community: str) -> str:
    """The ``urn:oid:`` spelling of a valid OID; anything else as the peer wrote it."""
    return Oid(community).urn if Oid.is_valid(community) else community
