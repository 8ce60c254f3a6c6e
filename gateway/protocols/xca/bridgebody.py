"""One DICOM instance out of a WADO-RS / RAD-160 answer's body and into a spool file,
checked on its way (PS3.18 §8.7.3.5, PS3.10 §7.1; digest §9 items 10, 11).

* :class:`WholeBody` — an ``application/dicom`` body is the instance;
  :class:`MultipartBody` — a ``multipart/related`` body must hold exactly one
  ``application/dicom`` part (split with :class:`~gateway.relay.multipart.MultipartSplitter`,
  so the part's bytes are exact whatever the chunking). ``close`` raises
  :class:`~gateway.relay.multipart.MultipartError` for a body cut before its closing
  delimiter, :class:`WrongInstance` for no part, another media type or a second part.
* :class:`Spooling` — the bytes written to one spool file of the request's budget as they
  come; the File Meta Transfer Syntax UID (0002,0010) read from the first bytes (at most
  16 KiB kept) must be one the request asked for, else :class:`WrongInstance` (``syntax``):
  the part's own ``transfer-syntax`` parameter is not trusted (spec-digest checklist 25).
  :class:`~.spool.SpoolFull` (and ``OSError``) from the spool pass through, the file then
  discarded.
"""

from __future__ import annotations

from collections.abc import Iterator

from gateway.protocols.xca.spool import SpoolBudget, SpoolFile
from gateway.relay.dicomheader import read_transfer_syntax
from gateway.relay.multipart import MultipartSplitter, PartBytes, PartStart
from gateway.relay.partscan import HEADER_BYTES
from routing.media import media_or_none

__all__ = ["InstanceBody", "MultipartBody", "Spooling", "WholeBody", "WrongInstance"]

_DICOM = "application/dicom"


class WrongInstance(Exception):
    """The instance is not one the request may have: not Part 10, or in another syntax."""

    def __init__(self, *, syntax: bool) -> None:
        super().__init__("transfer syntax" if syntax else "not DICOM")
        self.syntax = syntax


class InstanceBody:
    """The instance's bytes out of the answer's body."""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        """Raise when the body did not hold exactly one whole instance."""


class WholeBody(InstanceBody):
    def feed(self, chunk: bytes) -> Iterator[bytes]:
        yield chunk


class MultipartBody(InstanceBody):
    """The single part of a ``multipart/related`` answer (PS3.18 §8.7.3.5)."""

    def __init__(self, boundary: str) -> None:
        self._splitter = MultipartSplitter(boundary)
        self._parts = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        for event in self._splitter.feed(chunk):
            if isinstance(event, PartStart):
                self._parts += 1
                media = media_or_none(event.headers.get("content-type", _DICOM))
                if self._parts > 1 or media is None or media.essence != _DICOM:
                    raise WrongInstance(syntax=False)
            elif isinstance(event, PartBytes):
                yield event.data

    def close(self) -> None:
        self._splitter.close()
        if self._parts != 1:
            raise WrongInstance(syntax=False)


class Spooling:
    """One instance on its way into a spool file, its File Meta checked from the first
    bytes (PS3.10 §7.1; the part's own transfer-syntax parameter is not trusted, spec-digest
    checklist 25)."""

    def __init__(self, budget: SpoolBudget, wanted: set[str]) -> None:
        self._budget = budget
        self._wanted = wanted
        self._file: SpoolFile | None = None
        self._prefix = bytearray()
        self._checked = False
        self.received = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.received += len(data)
        if not self._checked:
            self._prefix += data[: HEADER_BYTES - len(self._prefix)]
            self._check(final=False)
        if self._file is None:
            self._file = self._budget.file()
        self._file.write(data)  # SpoolFull discards the file

    def _check(self, *, final: bool) -> None:
        syntax = read_transfer_syntax(bytes(self._prefix))
        if syntax is None:
            if final or len(self._prefix) >= HEADER_BYTES:
                raise WrongInstance(syntax=False)
            return
        if syntax not in self._wanted:
            raise WrongInstance(syntax=True)
        self._checked = True
        self._prefix = bytearray()

    def finish(self) -> SpoolFile:
        if not self._checked:
            self._check(final=True)
        assert self._file is not None  # a checked prefix came with bytes
        self._file.finish()
        return self._file

    def discard(self) -> None:
        if self._file is not None:
            self._file.discard()
