"""Writing an :class:`~gateway.audit.model.AuditMessage` as DICOM audit XML (PS3.15 A.5.1).

The output is UTF-8 with an XML declaration and no namespace. Element and attribute order is
fixed, so the same message always gives the same bytes. By default there is no line break at
all: every character an attribute or text could carry that breaks a line is written as a
character reference, so one message is one line in a file or a line-based repository.
``pretty=True`` indents with one space per level and ends lines with LF (the layout of the
spec digest's sample S6).

Every ParticipantObjectIdentification has a ParticipantObjectName (see :func:`_object`), so
the output validates against PS3.15 A.5.1 both as published and as later corrected.

Characters XML 1.0 cannot carry (C0 controls other than tab, LF, CR; lone surrogates) are
replaced by U+FFFD rather than rejected: an audit record with one damaged character is worth
more than no record.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterator
from datetime import UTC, datetime

from gateway.audit.codes import Code
from gateway.audit.model import AuditMessage, Participant, ParticipantObject

__all__ = ["format_datetime", "render"]

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "\t": "&#9;",
    "\n": "&#10;",
    "\r": "&#13;",
}
_SPECIAL = re.compile(r'[&<>"\t\n\r]')
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_ANY = re.compile('[&<>"\x00-\x1f\ufffe\uffff\ud800-\udfff]')

_Line = tuple[int, str]


def render(message: AuditMessage, *, pretty: bool = False) -> bytes:
    """The XML document for ``message`` as UTF-8 bytes (no BOM)."""
    lines = [(0, _DECLARATION), *_message(message)]
    if pretty:
        text = "".join(" " * depth + line + "\n" for depth, line in lines)
        text = text.rstrip("\n")
    else:
        text = "".join(line for _, line in lines)
    return text.encode("utf-8")


def format_datetime(moment: datetime) -> str:
    """``xs:dateTime`` in UTC with milliseconds, e.g. ``2026-03-16T10:15:30.120Z``."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    # isoformat of a UTC time always ends "+00:00"; several times cheaper than strftime.
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _message(message: AuditMessage) -> Iterator[_Line]:
    yield 0, "<AuditMessage>"
    event = message.event
    yield (
        1,
        _open(
            "EventIdentification",
            EventActionCode=event.action.value,
            EventDateTime=format_datetime(event.at),
            EventOutcomeIndicator=str(int(event.outcome)),
        ),
    )
    yield 2, _code("EventID", event.id)
    for code in event.types:
        yield 2, _code("EventTypeCode", code)
    if event.outcome_description is not None:
        yield (
            2,
            f"<EventOutcomeDescription>{_escape(event.outcome_description)}</EventOutcomeDescription>",
        )
    yield 1, "</EventIdentification>"
    for participant in message.participants:
        yield from _participant(participant)
    source = message.source
    yield (
        1,
        _open(
            "AuditSourceIdentification",
            AuditEnterpriseSiteID=source.enterprise_site_id,
            AuditSourceID=source.source_id,
        ),
    )
    for type_code in source.type_codes:
        yield 2, _empty("AuditSourceTypeCode", **{"csd-code": type_code})
    yield 1, "</AuditSourceIdentification>"
    for obj in message.objects:
        yield from _object(obj)
    yield 0, "</AuditMessage>"


def _participant(participant: Participant) -> Iterator[_Line]:
    access_type = participant.access_point_type
    attributes = {
        "UserID": participant.user_id,
        "AlternativeUserID": participant.alternative_user_id,
        "UserName": participant.user_name,
        "UserIsRequestor": "true" if participant.is_requestor else "false",
        "NetworkAccessPointID": participant.access_point,
        "NetworkAccessPointTypeCode": None if access_type is None else str(int(access_type)),
    }
    if not participant.roles:
        yield 1, _empty("ActiveParticipant", **attributes)
        return
    yield 1, _open("ActiveParticipant", **attributes)
    for role in participant.roles:
        yield 2, _code("RoleIDCode", role)
    yield 1, "</ActiveParticipant>"


def _object(obj: ParticipantObject) -> Iterator[_Line]:
    yield (
        1,
        _open(
            "ParticipantObjectIdentification",
            ParticipantObjectID=obj.object_id,
            ParticipantObjectTypeCode=str(int(obj.type_code)),
            ParticipantObjectTypeCodeRole=None if obj.role is None else str(int(obj.role)),
        ),
    )
    yield 2, _code("ParticipantObjectIDTypeCode", obj.id_type)
    # Always a name: PS3.15 A.5.1 as published requires ParticipantObjectName or
    # ParticipantObjectQuery on every object (later editions made both optional). Query is
    # the text of a query object's query (role 24), which none of these objects is; the name
    # is "an instance-specific descriptor" of the object, its own name when one is known (a
    # patient's), else its ID, the one descriptor the gateway has of a study or a request.
    name = obj.name or obj.object_id
    yield 2, f"<ParticipantObjectName>{_escape(name)}</ParticipantObjectName>"
    for kind, value in obj.details:
        yield (
            2,
            _empty(
                "ParticipantObjectDetail", type=kind, value=base64.b64encode(value).decode("ascii")
            ),
        )
    if obj.sop_classes:
        yield 2, "<ParticipantObjectDescription>"
        for sop_class in obj.sop_classes:
            yield 3, _empty("SOPClass", UID=sop_class.uid, NumberOfInstances=str(sop_class.count))
        yield 2, "</ParticipantObjectDescription>"
    yield 1, "</ParticipantObjectIdentification>"


@functools.lru_cache(maxsize=512)
def _code(tag: str, code: Code) -> str:
    # Codes are a small fixed set (the constants of gateway.audit.codes): render each once.
    return _empty(
        tag, **{"csd-code": code.code, "codeSystemName": code.scheme, "originalText": code.text}
    )


def _open(tag: str, **attributes: str | None) -> str:
    return f"<{tag}{_attributes(attributes)}>"


def _empty(tag: str, **attributes: str | None) -> str:
    return f"<{tag}{_attributes(attributes)}/>"


def _attributes(attributes: dict[str, str | None]) -> str:
    parts = []
    for name, value in attributes.items():
        if value is not None:
            parts.append(f' {name}="{_escape(value)}"')
    return "".join(parts)


def _escape(value: str) -> str:
    if _ANY.search(value) is None:  # the common case: UIDs, codes, host names
        return value
    value = _FORBIDDEN.sub("\ufffd", value)
    return _SPECIAL.sub(lambda match: _ESCAPES[match.group()], value)
