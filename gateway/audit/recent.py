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
test holds the two to it). Memory is bounded by the records' encoded size (``max_bytes``;
held as values they take about as much, measured with ``tracemalloc``), the oldest let go
first. A record larger than ``largest`` is not kept at all: a SOAP retrieval's messages (up to
forty documents each, many small objects) would crowd out hundreds of small ones, and are
few per request, so decoding them costs little. Any thread: the request loop notes, the
senders' thread reads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from gateway.audit.journal import Record
from gateway.audit.record import AuditRecord, LegacyFrame, decode

__all__ = ["RecentRecords"]


class RecentRecords:
    """A bounded map from journal end offset to the record written there."""

    def __init__(self, max_bytes: int = 2 * 1024 * 1024, largest: int = 8 * 1024) -> None:
        """``max_bytes``: the encoded size of the records kept (2 MiB: some 1,600 records of
        a small retrieval, over half a second of a busy gateway's audit trail); ``largest``:
        the largest record kept (a small retrieval's are about 1.3 KB)."""
        self.max_bytes = max_bytes
        self.largest = largest
        self._records: OrderedDict[int, tuple[AuditRecord, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def note(self, end: int, record: AuditRecord, size: int) -> None:
        """``record``, ``size`` bytes encoded, was journalled ending at ``end``."""
        if size > self.largest:
            return
        with self._lock:
            self._records[end] = (record, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= self._records.popitem(last=False)[1][1]

    def decode(self, record: Record) -> AuditRecord | LegacyFrame:
        """The value of a journal ``record``: the noted one, else decoded from its bytes.
        Raises :class:`~gateway.audit.errors.RecordError` as
        :func:`~gateway.audit.record.decode` does."""
        with self._lock:
            noted = self._records.get(record.end)
        return noted[0] if noted is not None else decode(record.payload)

    def __len__(self) -> int:
        return len(self._records)

    @property
    def bytes(self) -> int:
        """The encoded size of the records kept."""
        return self._bytes

    def clear(self) -> None:
        """Forget everything (the journal was reopened: offsets may mean other records)."""
        with self._lock:
            self._records.clear()
            self._bytes = 0
