"""The records this process journalled lately, kept as values for the senders.

A record goes to the journal as bytes (:func:`~gateway.audit.record.encode`) and, a few
milliseconds later, each sender reads those bytes back and would decode them before
rendering. Decoding is the dearest step of sending (it validates every member). Records the
process itself just wrote need none of it: :meth:`RecentRecords.note` keeps the value
beside its journal end offset, and :meth:`RecentRecords.decode` hands a sender that value
for a record it read, falling back to :func:`~gateway.audit.record.decode` for anything
else (a record of an earlier process, one a lagging sender reaches after it was let go).

The journal stays the only source of truth: a sender still reads every record from the
journal (its offsets, its checksum), and the value handed over is the one the bytes were
encoded from, which :func:`~gateway.audit.record.decode` gives back exactly (a property
test holds the two to it). Memory is bounded by ``capacity`` records, the oldest let go
first. Any thread: the request loop notes, the senders' thread reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from gateway.audit.journal import Record
from gateway.audit.record import AuditRecord, LegacyFrame, decode

__all__ = ["RecentRecords"]


class RecentRecords:
    """A bounded map from journal end offset to the record written there."""

    def __init__(self, capacity: int = 1024) -> None:
        """``capacity``: records kept (about 1 s of a busy gateway's audit trail, a few MB)."""
        self.capacity = capacity
        self._records: OrderedDict[int, AuditRecord] = OrderedDict()
        self._lock = threading.Lock()

    def note(self, end: int, record: AuditRecord) -> None:
        """``record`` was journalled ending at ``end``."""
        with self._lock:
            self._records[end] = record
            if len(self._records) > self.capacity:
                self._records.popitem(last=False)

    def decode(self, record: Record) -> AuditRecord | LegacyFrame:
        """The value of a journal ``record``: the noted one, else decoded from its bytes.
        Raises :class:`~gateway.audit.errors.RecordError` as
        :func:`~gateway.audit.record.decode` does."""
        with self._lock:
            noted = self._records.get(record.end)
        return noted if noted is not None else decode(record.payload)

    def __len__(self) -> int:
        return len(self._records)

    def clear(self) -> None:
        """Forget everything (the journal was reopened: offsets may mean other records)."""
        with self._lock:
            self._records.clear()
