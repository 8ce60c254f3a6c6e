"""An audit message as frozen values, mirroring the structure of PS3.15 A.5.1.

``AuditMessage`` = ``EventIdentification``, one or more ``ActiveParticipant``, one
``AuditSourceIdentification`` and any number of ``ParticipantObjectIdentification``. The
builders in :mod:`gateway.audit.messages` make these; :mod:`gateway.audit.render` turns one
into XML. Nothing here validates PS3.15 content rules (one patient per message and so on):
the builders own those, and the tests check them against a schema.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gateway.audit.codes import Code

__all__ = [
    "ActionCode",
    "AuditMessage",
    "AuditSource",
    "Event",
    "NetworkAccessPointType",
    "ObjectRole",
    "ObjectType",
    "Outcome",
    "Participant",
    "ParticipantObject",
    "SopClassCount",
]


class ActionCode(enum.StrEnum):
    """``EventActionCode`` (PS3.15 A.5.1): create, read, update, delete, execute."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"


class Outcome(enum.IntEnum):
    """``EventOutcomeIndicator`` (PS3.15 A.5.1)."""

    SUCCESS = 0
    MINOR_FAILURE = 4  # the action failed or was refused; the system works
    SERIOUS_FAILURE = 8  # the action was terminated part-way
    MAJOR_FAILURE = 12  # the action could not be performed at all


class NetworkAccessPointType(enum.IntEnum):
    """``NetworkAccessPointTypeCode`` (PS3.15 A.5.1)."""

    MACHINE_NAME = 1
    IP_ADDRESS = 2
    TELEPHONE = 3
    EMAIL = 4
    URI = 5


class ObjectType(enum.IntEnum):
    """``ParticipantObjectTypeCode`` (PS3.15 A.5.1)."""

    PERSON = 1
    SYSTEM_OBJECT = 2
    ORGANIZATION = 3
    OTHER = 4


class ObjectRole(enum.IntEnum):
    """The ``ParticipantObjectTypeCodeRole`` values this gateway uses (PS3.15 A.5.1)."""

    PATIENT = 1
    REPORT = 3
    SECURITY_RESOURCE = 13


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """``EventIdentification``. ``at`` must be timezone-aware; it is written in UTC."""

    id: Code
    action: ActionCode
    at: datetime
    outcome: Outcome
    types: tuple[Code, ...] = ()
    outcome_description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Participant:
    """``ActiveParticipant``: a user, process or node taking part in the event."""

    user_id: str
    is_requestor: bool
    roles: tuple[Code, ...] = ()
    alternative_user_id: str | None = None
    user_name: str | None = None
    access_point: str | None = None
    access_point_type: NetworkAccessPointType | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditSource:
    """``AuditSourceIdentification``: who wrote the message. Type ``4`` is an application
    server process (PS3.15 A.5.1, RFC 3881 audit source type codes)."""

    source_id: str
    enterprise_site_id: str | None = None
    type_codes: tuple[str, ...] = ("4",)


@dataclass(frozen=True, slots=True, kw_only=True)
class SopClassCount:
    """One ``SOPClass`` entry of a study object: its UID and how many instances moved."""

    uid: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantObject:
    """``ParticipantObjectIdentification``.

    ``details`` are ``ParticipantObjectDetail`` pairs; their values are raw bytes, written
    base64-encoded. ``sop_classes`` are written inside ``ParticipantObjectDescription`` (the
    layout of the DICOM 2017c-era schema, see docs/audit.md).
    """

    object_id: str
    type_code: ObjectType
    id_type: Code
    role: ObjectRole | None = None
    name: str | None = None
    details: tuple[tuple[str, bytes], ...] = ()
    sop_classes: tuple[SopClassCount, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditMessage:
    """One whole audit message."""

    event: Event
    participants: tuple[Participant, ...]
    source: AuditSource
    objects: tuple[ParticipantObject, ...] = ()
