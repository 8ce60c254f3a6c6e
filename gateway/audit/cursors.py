"""Where each destination is in the journal: one small file per destination.

``cursors/<name>`` holds the logical offset up to which destination ``name`` has confirmed
the journal's records, in decimal. A file is replaced atomically (write a temporary file,
``rename(2)``) and never ``fsync``-ed: losing an update after a crash means resending records
the destination already has (at-least-once), never skipping one.

Before destinations had cursors, the journal kept one offset in ``committed``; it is read
once as the position of every destination without a cursor of its own, then retired.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["CURSOR_NAME", "CursorFiles", "check_names"]

log = logging.getLogger("mado_gateway.audit.journal")

CURSOR_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
"""A destination name: safe as a file name and as a metric label value."""


def check_names(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple; raises ``ValueError`` unless there is at least one, each unique
    and matching :data:`CURSOR_NAME`."""
    out = tuple(names)
    if not out:
        raise ValueError("a journal needs at least one cursor")
    for name in out:
        if not CURSOR_NAME.fullmatch(name):
            raise ValueError(f"cursor name {name!r} is not 1-32 of a-z, 0-9, '_' and '-'")
    if len(set(out)) != len(out):
        raise ValueError("cursor names must be unique")
    return out


class CursorFiles:
    """The cursor files of one journal directory. Not thread-safe; the journal serialises."""

    def __init__(self, directory: Path) -> None:
        self.folder = directory / "cursors"
        self.legacy = directory / "committed"

    def load(self, names: Iterable[str]) -> tuple[dict[str, int | None], int | None]:
        """Each name's stored offset (None when it has none yet) and the legacy offset (None
        when there is no ``committed`` file). Raises ``OSError`` when the folder cannot be
        made; an unreadable file counts as absent, logged."""
        self.folder.mkdir(exist_ok=True)
        stored = {name: _read_offset(self.folder / name) for name in names}
        return stored, _read_offset(self.legacy)

    def store(self, name: str, offset: int) -> None:
        """Replace ``name``'s cursor. Raises ``OSError``."""
        path = self.folder / name
        temporary = path.with_name(f".{name}.tmp")
        temporary.write_text(f"{offset}\n", encoding="ascii")
        os.replace(temporary, path)

    def retire_legacy(self) -> None:
        """Remove ``committed`` once every cursor has been stored. Raises ``OSError``."""
        with contextlib.suppress(FileNotFoundError):
            self.legacy.unlink()


def _read_offset(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        log.error("audit journal: unreadable cursor; resending", extra={"file": str(path)})
        return None
    if not text.isdigit():
        log.error("audit journal: malformed cursor; resending", extra={"file": str(path)})
        return None
    return int(text)
