"""Errors raised by the audit package (the tree is drawn in :mod:`gateway.audit`)."""

from __future__ import annotations

__all__ = [
    "AuditError",
    "JournalCorrupt",
    "JournalError",
    "JournalFull",
    "RecordError",
    "TransportError",
]


class AuditError(Exception):
    """Base of every error the audit package raises."""


class JournalError(AuditError):
    """The on-disk journal cannot be opened, read or written (``errno`` when an OS error)."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        self.errno = errno
        super().__init__(message)


class JournalFull(JournalError):
    """Appending would take the unsent backlog over the configured cap."""


class JournalCorrupt(JournalError):
    """A journal file holds bytes that are not a whole, checksummed record."""


class RecordError(JournalCorrupt):
    """A checksummed journal record this build cannot decode.

    ``version`` is the record's schema version when it could be read (a version this build
    does not know: a newer gateway wrote the journal), None when the bytes are not a record.
    """

    def __init__(self, message: str, version: int | None = None) -> None:
        self.version = version
        super().__init__(message)


class TransportError(AuditError):
    """The Audit Record Repository could not be reached or the connection broke.

    ``reason`` is a bounded word usable as a metric label: ``connect``, ``tls``, ``closed``,
    ``write`` or ``timeout``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")
