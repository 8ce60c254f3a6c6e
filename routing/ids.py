"""Identifier value types: DICOM UIDs and ISO OIDs, validated once.

A :class:`Uid` is a ``str`` that has been checked against DICOM PS3.5 §9.1: one or more
numeric components separated by dots, no leading zero in a multi-digit component, at most
64 characters. :class:`Oid` is a UID that may arrive with a ``urn:oid:`` or ``oid:`` prefix
(MADO manifests and XDS metadata use both); the prefix is removed, so two spellings of one
OID compare equal and hash alike. :class:`HomeCommunityId` is the OID that names an IHE
community; :attr:`HomeCommunityId.urn` gives the ``urn:oid:`` form XCA metadata expects.

Constructing any of them from an invalid string raises :class:`InvalidIdentifier`.
"""

from __future__ import annotations

import re
from typing import Self

from routing.errors import InvalidIdentifier

__all__ = ["HomeCommunityId", "Oid", "Uid", "MAX_UID_LENGTH"]

MAX_UID_LENGTH = 64

_UID_SYNTAX = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*")
_OID_PREFIXES = ("urn:oid:", "oid:")


class Uid(str):
    """A syntactically valid DICOM UID (PS3.5 §9.1)."""

    __slots__ = ()
    kind = "UID"

    def __new__(cls, value: str) -> Self:
        text = cls._canonical(value)
        if len(text) > MAX_UID_LENGTH:
            raise InvalidIdentifier(cls.kind, value, f"longer than {MAX_UID_LENGTH} characters")
        if _UID_SYNTAX.fullmatch(text) is None:
            raise InvalidIdentifier(
                cls.kind, value, "must be digits separated by dots, without leading zeros"
            )
        return super().__new__(cls, text)

    @classmethod
    def _canonical(cls, value: str) -> str:
        if not isinstance(value, str):
            raise InvalidIdentifier(cls.kind, repr(value), "must be a string")
        return value

    @classmethod
    def is_valid(cls, value: str) -> bool:
        """True when ``cls(value)`` would succeed."""
        try:
            cls(value)
        except InvalidIdentifier:
            return False
        return True


class Oid(Uid):
    """An ISO OID; ``urn:oid:`` and ``oid:`` prefixes (any letter case) are accepted and dropped."""

    __slots__ = ()
    kind = "OID"

    @classmethod
    def _canonical(cls, value: str) -> str:
        text = super()._canonical(value).strip()
        lowered = text[:8].lower()
        for prefix in _OID_PREFIXES:
            if lowered.startswith(prefix):
                return text[len(prefix) :]
        return text

    @property
    def urn(self) -> str:
        """The ``urn:oid:`` spelling used in XDS and XCA metadata."""
        return f"urn:oid:{self}"


class HomeCommunityId(Oid):
    """The OID naming an IHE community (XCA homeCommunityId)."""

    __slots__ = ()
    kind = "homeCommunityId"
