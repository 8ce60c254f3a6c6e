"""The journal's record: one audit event as neutral, versioned data, not a rendered frame.

The journal keeps what happened (:class:`AuditRecord`: the PS3.15 message as values, plus
when and by which process it was recorded and the request it belongs to); each destination
renders it at send time (RFC 5424 syslog today, a FHIR AuditEvent tomorrow), so one journal
feeds destinations of different formats.

Encoding, version 1: one JSON object, ASCII only (every non-ASCII character, lone
surrogates included, is a ``\\u`` escape, so any Python string survives exactly), with the
version as its first member, so :func:`record_version` reads it without parsing::

    {"v":1,"event":"instances-transferred","recorded_at":"2026-03-16T10:15:30.120000+00:00",
     "process_id":4242,"request_id":"…","message":{"event":{…},"participants":[…],
     "source":{…},"objects":[…]}}

Members mirror :mod:`gateway.audit.model` field by field: codes are ``[code, scheme,
text]``, enums their values, times ISO 8601 in UTC, ``details`` values base64;
optional members whose value is None are left out.

Version 0 is what gateways wrote before records were versioned: a rendered RFC 5424 syslog
message, recognised by its first byte ``<`` (the PRI); :func:`decode` returns it as a
:class:`LegacyFrame` for syslog destinations to send verbatim.

A version this build does not know (a newer gateway wrote the journal) raises
:class:`~gateway.audit.errors.RecordError` naming it: the journal refuses to open
rather than skip events (see docs/audit.md, "Migration"). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from gateway.audit.codes import Code
from gateway.audit.errors import RecordError
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

__all__ = [
    "VERSION",
    "AuditRecord",
    "LegacyFrame",
    "check_version",
    "decode",
    "encode",
    "record_version",
]

VERSION = 1
"""The record version this build writes; it reads this one and version 0."""

_PREFIX = b'{"v":'
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One journalled audit event.

    ``event`` is the bounded event label (``begin-transferring``, ``instances-transferred``,
    ``instances-accessed``, ``application-activity``, ``security-alert``); ``recorded_at``
    (timezone-aware) and ``process_id`` say when and by which process it was journalled (the
    syslog TIMESTAMP and PROCID); ``request_id`` is the exchange's request id, None for
    events no request caused.
    """

    event: str
    recorded_at: datetime
    process_id: int
    request_id: str | None
    message: AuditMessage


@dataclass(frozen=True, slots=True)
class LegacyFrame:
    """A version-0 record: an RFC 5424 message rendered by a gateway of an earlier release."""

    message: bytes


def encode(record: AuditRecord) -> bytes:
    """The version-:data:`VERSION` bytes of ``record``. Raises ``ValueError`` for a naive time."""
    document: dict[str, Any] = {
        "v": VERSION,
        "event": record.event,
        "recorded_at": _time(record.recorded_at),
        "process_id": record.process_id,
    }
    if record.request_id is not None:
        document["request_id"] = record.request_id
    document["message"] = _message(record.message)
    # orjson writes the same bytes as the json module for ASCII content without DEL (which
    # only the json module escapes), several times faster; anything else (non-ASCII text,
    # lone surrogates) takes the json module's escapes, as the format says.
    try:
        fast = orjson.dumps(document)
    except orjson.JSONEncodeError:
        fast = b"\x80"
    if fast.isascii() and b"\x7f" not in fast:
        return fast
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def record_version(payload: bytes) -> int:
    """The version of a journalled payload, read from its first bytes without parsing it.

    Raises :class:`RecordError` when the payload is neither a versioned record nor a legacy
    frame."""
    if payload[:1] == b"<":
        return 0
    if payload.startswith(_PREFIX):
        digits = payload[len(_PREFIX) : len(_PREFIX) + 11].split(b",", 1)[0].rstrip(b"}")
        if digits.isdigit():
            return int(digits)
    raise RecordError("journal record is neither a versioned record nor a syslog frame")


def check_version(payload: bytes) -> None:
    """Raise :class:`RecordError` unless this build can decode ``payload``'s version."""
    version = record_version(payload)
    if version > VERSION:
        raise RecordError(
            f"journal record has version {version}, this gateway reads versions 0 to "
            f"{VERSION}: a newer release wrote it; let that release send the journal, or "
            "move the journal directory aside",
            version,
        )


def decode(payload: bytes) -> AuditRecord | LegacyFrame:
    """The record ``payload`` holds. Raises :class:`RecordError` (never anything else) when
    its version is unknown or its content is not a well-formed record."""
    check_version(payload)
    if payload[:1] == b"<":
        return LegacyFrame(payload)
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError:
        # orjson refuses lone surrogates, which this format carries as escapes on purpose.
        try:
            document = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise RecordError(f"journal record is not JSON: {exc}", VERSION) from None
    try:
        root = _Reader(document, ("record",))
        message = root.nested("message", _read_message)
        record = AuditRecord(
            event=root.text("event"),
            recorded_at=root.time("recorded_at"),
            process_id=root.integer("process_id"),
            request_id=root.optional_text("request_id"),
            message=message,
        )
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise RecordError(f"malformed journal record: {exc}", VERSION) from None
    return record


# -- encoding ---------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware")
    # In UTC: the instant is kept exactly (an offset with seconds would not parse back).
    return moment.astimezone(UTC).isoformat()


def _code(code: Code) -> list[str]:
    return [code.code, code.scheme, code.text]


def _put(target: dict[str, Any], key: str, value: object) -> None:
    if value is not None:
        target[key] = value


def _message(message: AuditMessage) -> dict[str, Any]:
    event = message.event
    event_doc: dict[str, Any] = {
        "id": _code(event.id),
        "action": event.action.value,
        "at": _time(event.at),
        "outcome": int(event.outcome),
        "types": [_code(code) for code in event.types],
    }
    _put(event_doc, "outcome_description", event.outcome_description)
    source: dict[str, Any] = {"source_id": message.source.source_id}
    _put(source, "enterprise_site_id", message.source.enterprise_site_id)
    source["type_codes"] = list(message.source.type_codes)
    return {
        "event": event_doc,
        "participants": [_participant(p) for p in message.participants],
        "source": source,
        "objects": [_object(o) for o in message.objects],
    }


def _participant(participant: Participant) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "user_id": participant.user_id,
        "is_requestor": participant.is_requestor,
        "roles": [_code(code) for code in participant.roles],
    }
    _put(doc, "alternative_user_id", participant.alternative_user_id)
    _put(doc, "user_name", participant.user_name)
    _put(doc, "access_point", participant.access_point)
    point_type = participant.access_point_type
    _put(doc, "access_point_type", None if point_type is None else int(point_type))
    return doc


def _object(obj: ParticipantObject) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "object_id": obj.object_id,
        "type_code": int(obj.type_code),
        "id_type": _code(obj.id_type),
    }
    _put(doc, "role", None if obj.role is None else int(obj.role))
    _put(doc, "name", obj.name)
    doc["details"] = [[kind, base64.b64encode(data).decode("ascii")] for kind, data in obj.details]
    doc["sop_classes"] = [[c.uid, c.count] for c in obj.sop_classes]
    return doc


# -- decoding ---------------------------------------------------------------------------


_Path = tuple[str | int, ...]


def _spell(path: _Path) -> str:
    """``record.message.objects[2].details`` from its parts (only when reporting an error)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class _Reader:
    """Typed reads from one JSON object; a wrong type is a ``TypeError`` naming the path
    (kept as parts, spelt out only for the error: decoding runs once per record sent)."""

    __slots__ = ("_data", "_path")

    def __init__(self, value: object, path: _Path) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"{_spell(path)} must be an object")
        self._data: dict[str, Any] = value
        self._path = path

    def _get(self, key: str, kind: type[_T], *, optional: bool = False) -> _T | None:
        value = self._data.get(key)
        # The exact type: bool is an int to Python, never to this format (JSON gives no
        # subclasses).
        if type(value) is kind:
            return value
        if value is None and optional:
            return None
        raise TypeError(f"{_spell((*self._path, key))} must be {kind.__name__}")

    def text(self, key: str) -> str:
        value = self._get(key, str)
        assert value is not None
        return value

    def optional_text(self, key: str) -> str | None:
        return self._get(key, str, optional=True)

    def integer(self, key: str) -> int:
        value = self._get(key, int)
        assert value is not None
        return value

    def optional_integer(self, key: str) -> int | None:
        return self._get(key, int, optional=True)

    def flag(self, key: str) -> bool:
        value = self._get(key, bool)
        assert value is not None
        return value

    def time(self, key: str) -> datetime:
        moment = datetime.fromisoformat(self.text(key))
        if moment.tzinfo is None:
            raise ValueError(f"{_spell((*self._path, key))} has no time zone")
        return moment

    def code(self, key: str) -> Code:
        return _read_code(self._data.get(key), (*self._path, key))

    def items(self, key: str) -> list[Any]:
        value = self._get(key, list)
        assert value is not None
        return value

    def codes(self, key: str) -> tuple[Code, ...]:
        path = (*self._path, key)
        return tuple(_read_code(item, (*path, n)) for n, item in enumerate(self.items(key)))

    def nested(self, key: str, read: Callable[[_Reader], _T]) -> _T:
        return read(_Reader(self._data.get(key), (*self._path, key)))

    def each(self, key: str, read: Callable[[_Reader], _T]) -> tuple[_T, ...]:
        path = (*self._path, key)
        return tuple(read(_Reader(item, (*path, n))) for n, item in enumerate(self.items(key)))


def _read_code(value: object, path: _Path) -> Code:
    if isinstance(value, list) and len(value) == 3:
        code, scheme, text = value
        if type(code) is str and type(scheme) is str and type(text) is str:
            key = (code, scheme, text)
            known = _CODES.get(key)
            if known is None:
                known = Code(code, scheme, text)
                if len(_CODES) < _MAX_CODES:
                    _CODES[key] = known
            return known
    raise TypeError(f"{_spell(path)} must be [code, scheme, text]")


# Records repeat a few dozen codes (gateway.audit.codes); one value each, not one per read.
_CODES: dict[tuple[str, str, str], Code] = {}
_MAX_CODES = 1024


def _pair(value: object, path: str, second: type[_T]) -> tuple[str, _T]:
    if (
        isinstance(value, list)
        and len(value) == 2
        and type(value[0]) is str
        and type(value[1]) is second
    ):
        return value[0], value[1]
    raise TypeError(f"{path} must be a pair")


def _read_message(doc: _Reader) -> AuditMessage:
    return AuditMessage(
        event=doc.nested("event", _read_event),
        participants=doc.each("participants", _read_participant),
        source=doc.nested("source", _read_source),
        objects=doc.each("objects", _read_object),
    )


def _read_event(doc: _Reader) -> Event:
    return Event(
        id=doc.code("id"),
        action=ActionCode(doc.text("action")),
        at=doc.time("at"),
        outcome=Outcome(doc.integer("outcome")),
        types=doc.codes("types"),
        outcome_description=doc.optional_text("outcome_description"),
    )


def _read_participant(doc: _Reader) -> Participant:
    point_type = doc.optional_integer("access_point_type")
    return Participant(
        user_id=doc.text("user_id"),
        is_requestor=doc.flag("is_requestor"),
        roles=doc.codes("roles"),
        alternative_user_id=doc.optional_text("alternative_user_id"),
        user_name=doc.optional_text("user_name"),
        access_point=doc.optional_text("access_point"),
        access_point_type=None if point_type is None else NetworkAccessPointType(point_type),
    )


def _read_source(doc: _Reader) -> AuditSource:
    type_codes = doc.items("type_codes")
    if not all(isinstance(code, str) for code in type_codes):
        raise TypeError("record.message.source.type_codes must be strings")
    return AuditSource(
        source_id=doc.text("source_id"),
        enterprise_site_id=doc.optional_text("enterprise_site_id"),
        type_codes=tuple(type_codes),
    )


def _read_object(doc: _Reader) -> ParticipantObject:
    role = doc.optional_integer("role")
    details = []
    for n, item in enumerate(doc.items("details")):
        kind, value = _pair(item, f"details[{n}]", str)
        details.append((kind, binascii.a2b_base64(value.encode("ascii"), strict_mode=True)))
    sop_classes = []
    for n, item in enumerate(doc.items("sop_classes")):
        uid, count = _pair(item, f"sop_classes[{n}]", int)
        sop_classes.append(SopClassCount(uid=uid, count=count))
    return ParticipantObject(
        object_id=doc.text("object_id"),
        type_code=ObjectType(doc.integer("type_code")),
        id_type=doc.code("id_type"),
        role=None if role is None else ObjectRole(role),
        name=doc.optional_text("name"),
        details=tuple(details),
        sop_classes=tuple(sop_classes),
    )
