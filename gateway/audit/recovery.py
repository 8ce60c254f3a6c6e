"""Reading a journal directory back at open: which records are whole, where cursors may be.

Segments are walked record by record. A record cut short (a power loss during the write) or
whose checksum fails ends its segment's readable part; in the last segment the damaged tail
is cut off, so appends continue on a record boundary. Between segments, a missing range
(a segment deleted by hand, a damaged middle) is a *gap*: its records are lost, logged.

A cursor read back is then moved onto a record boundary inside the journal: past the end
(the data behind it was lost in a power failure) to the end; into a gap to the gap's end;
inside a record (a damaged cursor file) to the next record. Moving forward loses at most what
is already lost; every move is logged. A cursor before the oldest segment (its destination
was left out of the configuration for a while) moves to the oldest record.
"""

from __future__ import annotations

import bisect
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.audit.segments import HEADER, segment_path

__all__ = ["Scan", "scan_segments"]

log = logging.getLogger("mado_gateway.audit.journal")


@dataclass(slots=True)
class Scan:
    """What a directory's segments hold: every whole record's end, the gaps, the end."""

    starts: list[int]
    ends: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    end: int = 0

    def boundary(self, name: str, offset: int) -> int:
        """``offset`` (destination ``name``'s cursor) moved onto the nearest record boundary
        at or after it, inside the journal."""
        if offset > self.end:
            log.warning(
                "audit journal: cursor past the end (records lost in a power failure?)",
                extra={"destination": name, "cursor": offset, "end": self.end},
            )
            return self.end
        if offset < self.starts[0]:
            # A destination removed from the configuration and added back: the segments it
            # had not confirmed went once every configured destination had passed them.
            log.warning(
                "audit journal: records this destination had not confirmed are gone",
                extra={"destination": name, "cursor": offset, "oldest": self.starts[0]},
            )
            return self.starts[0]
        for gap_start, gap_end in self.gaps:
            if gap_start <= offset < gap_end:
                return gap_end
        index = bisect.bisect_left(self.ends, offset)
        if offset in self.starts or (index < len(self.ends) and self.ends[index] == offset):
            return offset
        after = [start for start in self.starts if start > offset]
        if index < len(self.ends):
            after.append(self.ends[index])
        moved = min(after, default=self.end)
        log.error(
            "audit journal: cursor inside a record; moved to the next record",
            extra={"destination": name, "cursor": offset, "moved_to": moved},
        )
        return moved


def scan_segments(
    directory: Path,
    starts: list[int],
    *,
    check: Callable[[bytes], None] | None,
    check_from: int,
) -> Scan:
    """Walk the segments starting at ``starts`` (ascending, not empty). ``check`` sees every
    payload at or after ``check_from`` and may raise to refuse the journal. Raises
    ``OSError`` when a segment cannot be read or truncated."""
    scan = Scan(starts=starts, end=starts[0])
    for index, start in enumerate(starts):
        if index and start != scan.end:
            scan.gaps.append((scan.end, start))
            log.error(
                "audit journal gap: records lost",
                extra={"from_offset": scan.end, "to_offset": start},
            )
        last = index == len(starts) - 1
        scan.end = _scan(directory, start, scan.ends, check, check_from, last=last)
    return scan


def _scan(
    directory: Path,
    start: int,
    ends: list[int],
    check: Callable[[bytes], None] | None,
    check_from: int,
    *,
    last: bool,
) -> int:
    """Walk one segment's records into ``ends``; returns the segment's end offset."""
    path = segment_path(directory, start)
    data = path.read_bytes()
    position = 0
    while position + HEADER.size <= len(data):
        length, crc = HEADER.unpack_from(data, position)
        body = data[position + HEADER.size : position + HEADER.size + length]
        if len(body) != length or zlib.crc32(body) != crc:
            break
        if check is not None and start + position >= check_from:
            check(body)
        position += HEADER.size + length
        ends.append(start + position)
    if position != len(data):
        log.error(
            "audit journal: damaged tail dropped",
            extra={"segment": path.name, "bytes": len(data) - position},
        )
        if last:
            with open(path, "r+b") as handle:
                handle.truncate(position)
    return start + position
