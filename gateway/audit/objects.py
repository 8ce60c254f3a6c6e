"""Participant objects of the gateway's audit messages (PS3.15 A.5.1
``ParticipantObjectIdentification``): patients, studies, and the request the message belongs
to.

* Patient: type 1 (person), role 1, ID type ``2`` RFC-3881 "Patient Number", ID as an HL7 v2
  CX (:func:`patient_cx`), or :data:`UNKNOWN_PATIENT_ID` when no relayed header named one;
  ParticipantObjectName the patient's name when a header gave it.
* Study: type 2 (system object), role 3 (report), ID type 110180, ID the Study Instance UID
  (:data:`UNKNOWN_STUDY_UID` when nothing named it), SOP classes with distinct-instance counts,
  the community as ``ihe:homeCommunityID`` (PS3.15 A.5.3 "DICOM Instances Transferred").
* Request (:func:`request_object`): type 2, no role, ID type ``XrequestId`` of IHE BALP, ID
  the exchange's request id — what the access log and the ``X-Request-ID`` answer header
  carry — so an Audit Record Repository can tell a resend (same id, same bytes) from a
  distinct event, and an auditor can find the exchange in the logs. When that id was the
  client's (which other exchanges may share), the detail :data:`EXCHANGE_ID_DETAIL` adds the
  gateway's own id of the exchange. IHE BALP records the request id as an entity of its own
  beside the patient and the data; this is the same entity in the DICOM form.

The published PS3.15 A.5.1 schema requires ParticipantObjectName or ParticipantObjectQuery on
every object; :mod:`gateway.audit.render` writes the name (see there), so the builders set
:attr:`~gateway.audit.model.ParticipantObject.name` only to a real name.

Pure: no I/O, no asyncio (design.md §9 rule 1).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from gateway.audit import codes
from gateway.audit.model import ObjectRole, ObjectType, ParticipantObject, SopClassCount
from gateway.exchange import Exchange
from gateway.instances import PatientTally
from routing.ids import Oid

__all__ = [
    "EXCHANGE_ID_DETAIL",
    "HOME_COMMUNITY_DETAIL",
    "NOT_ITEMISED_DETAIL",
    "UNKNOWN_PATIENT_ID",
    "UNKNOWN_STUDY_UID",
    "community_details",
    "not_itemised_object",
    "patient_cx",
    "patient_object",
    "request_object",
    "request_of",
    "study_object",
    "study_objects",
]

UNKNOWN_PATIENT_ID = "UNKNOWN"
"""Patient object ID when no relayed instance header named the patient."""

UNKNOWN_STUDY_UID = "UNKNOWN"
"""Study object ID when neither the request nor an instance header named the study."""

HOME_COMMUNITY_DETAIL = "ihe:homeCommunityID"
NOT_ITEMISED_DETAIL = "mado-gateway:instancesNotItemised"
"""Study object detail: how many relayed instances the exchange could not itemise."""
EXCHANGE_ID_DETAIL = "mado-gateway:exchangeId"
"""Request object detail: the gateway's own id of an exchange whose request id the client
chose."""

# The escape character comes first, so the escapes added after it are not escaped again.
_HL7_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


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


def patient_object(
    patient_id: str | None, issuer: str | None = None, name: str | None = None
) -> ParticipantObject:
    """The patient object: :func:`patient_cx`, or :data:`UNKNOWN_PATIENT_ID` when
    ``patient_id`` is None or empty; ``name`` as the headers gave it (also without an ID)."""
    return ParticipantObject(
        object_id=patient_cx(patient_id, issuer) if patient_id else UNKNOWN_PATIENT_ID,
        type_code=ObjectType.PERSON,
        role=ObjectRole.PATIENT,
        id_type=codes.PATIENT_NUMBER,
        name=name,
    )


def study_object(
    study_uid: str | None,
    *,
    details: tuple[tuple[str, bytes], ...] = (),
    sop_classes: tuple[SopClassCount, ...] = (),
) -> ParticipantObject:
    """One study object (type 2, role 3, ID type 110180)."""
    return ParticipantObject(
        object_id=(study_uid or "").strip() or UNKNOWN_STUDY_UID,
        type_code=ObjectType.SYSTEM_OBJECT,
        role=ObjectRole.REPORT,
        id_type=codes.STUDY_INSTANCE_UID,
        details=details,
        sop_classes=sop_classes,
    )


def study_objects(
    exchange: Exchange, tally: PatientTally | None, *, only: Iterable[str] | None = None
) -> list[ParticipantObject]:
    """The studies of one patient's tally, with SOP classes and distinct-instance counts and
    the exchange's community; ``only`` keeps those studies (by UID) alone. A header without a
    Study UID stands for the study of the request path. With no study left, an object for
    each of ``only``, else one for the path's study (or :data:`UNKNOWN_STUDY_UID`)."""
    wanted = None if only is None else frozenset(only)
    by_study: dict[str, dict[str, int]] = {}
    for study_uid, study in (tally.studies if tally is not None else {}).items():
        uid = study_uid or exchange.study_uid or UNKNOWN_STUDY_UID
        if wanted is not None and uid not in wanted:
            continue
        classes = by_study.setdefault(uid, {})
        for sop_class, count in study.sop_classes().items():
            classes[sop_class] = classes.get(sop_class, 0) + count
    if not by_study:
        for uid in sorted(wanted) if wanted else (exchange.study_uid or UNKNOWN_STUDY_UID,):
            by_study[uid] = {}
    details = community_details(exchange)
    return [
        study_object(
            study,
            details=details,
            sop_classes=tuple(
                SopClassCount(uid=uid, count=count) for uid, count in sorted(classes.items())
            ),
        )
        for study, classes in by_study.items()
    ]


def not_itemised_object(exchange: Exchange) -> ParticipantObject:
    """The study object (:data:`UNKNOWN_STUDY_UID`) carrying how many instances the
    exchange's tally could not itemise, as :data:`NOT_ITEMISED_DETAIL` (decimal)."""
    count = str(exchange.instances.not_itemised).encode()
    return study_object(None, details=(*community_details(exchange), (NOT_ITEMISED_DETAIL, count)))


def request_object(request_id: str, exchange_id: str | None = None) -> ParticipantObject:
    """The request the message belongs to (see the module docstring): ``request_id`` and,
    when the client chose it, the gateway's ``exchange_id``."""
    details: tuple[tuple[str, bytes], ...] = ()
    if exchange_id is not None and exchange_id != request_id:
        details = ((EXCHANGE_ID_DETAIL, exchange_id.encode("utf-8", "replace")),)
    return ParticipantObject(
        object_id=request_id,
        type_code=ObjectType.SYSTEM_OBJECT,
        id_type=codes.X_REQUEST_ID,
        details=details,
    )


def request_of(exchange: Exchange) -> ParticipantObject:
    """:func:`request_object` of ``exchange``."""
    return request_object(exchange.request_id, exchange.exchange_id)


def community_details(exchange: Exchange) -> tuple[tuple[str, bytes], ...]:
    """``ihe:homeCommunityID`` = the exchange's community as ``urn:oid:``, if it has one."""
    if not exchange.home_community_id:
        return ()
    return _community(exchange.home_community_id)


@functools.lru_cache(maxsize=256)  # the communities of the registry
def _community(home_community_id: str) -> tuple[tuple[str, bytes], ...]:
    return ((HOME_COMMUNITY_DETAIL, Oid(home_community_id).urn.encode()),)


def _hl7_escape(value: str) -> str:
    for char, escape in _HL7_ESCAPES:
        value = value.replace(char, escape)
    return value
