"""A fast synthetic WADO-RS Imaging Document Source of numbered instances.

It answers instance-level GETs ``/studies/{st}/series/{se}/instances/{sop}`` (PS3.18 §10.4.1,
RAD-107) with a ``multipart/related; type="application/dicom"`` body holding one Part 10
instance in Explicit VR Little Endian, its own ``Content-Length`` on the part. Instance ``n``
is one :func:`peers.studies.make_study` CT instance with the SOP Instance UID and Series UID
swapped for numbered ones of the same length, so :class:`Catalogue` makes the same bytes
wherever it runs and a test checks SHA-256 without asking the source. Nothing is kept per
instance: each answer is made when asked for.

The Accept header is honoured as far as the bridge needs: a request that admits neither
``application/dicom`` in Explicit VR Little Endian nor ``*/*`` gets 406; an unknown SOP
Instance UID gets 404.

:class:`InstanceSource` serves in the caller's event loop (``async with``); the benchmark
runs :func:`serve` in a process of its own (:mod:`bench.xcaisource`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from peers.studies import make_study

__all__ = ["EXPLICIT_LE", "Catalogue", "Document", "InstanceSource", "answer", "serve"]

EXPLICIT_LE = "1.2.840.10008.1.2.1"
BOUNDARY = "xcai-source-7d2a"
_SOP_PREFIX = b"2.25.1"
_SERIES_PREFIX = b"2.25.2"


def _numbered(uid: bytes, prefix: bytes, n: int) -> bytes:
    """A UID as long as ``uid``: ``prefix`` then ``n`` zero-padded (a same-length swap keeps
    every length field of the Part 10 object right)."""
    return prefix + b"%0*d" % (len(uid) - len(prefix), n)


@dataclass(frozen=True, slots=True, kw_only=True)
class Document:
    """Where instance ``n`` is: its study, series and SOP Instance UIDs."""

    study_uid: str
    series_uid: str
    sop_uid: str


class Catalogue:
    """The source's instances: ``n`` → its UIDs and its Part 10 bytes (deterministic), each
    about ``size`` bytes, a new series every ``per_series`` instances."""

    def __init__(self, size: int, per_series: int) -> None:
        # 512 columns of 16-bit pixels, as many rows as ``size`` holds (Columns is a US)
        study = make_study(
            seed="bench-xcai",
            series_count=1,
            instances_per_series=1,
            rows=max(1, size // 1024),
            columns=512,
        )
        instance = study.instances[0]
        self._part10 = instance.part10
        self._sop = instance.sop_instance_uid.encode()
        self._series = instance.series_uid.encode()
        self.study_uid = study.study_uid
        self._per_series = per_series

    def _uids(self, n: int) -> tuple[bytes, bytes]:
        return (
            _numbered(self._series, _SERIES_PREFIX, n // self._per_series),
            _numbered(self._sop, _SOP_PREFIX, n),
        )

    def document(self, n: int) -> Document:
        series, sop = self._uids(n)
        return Document(study_uid=self.study_uid, series_uid=series.decode(), sop_uid=sop.decode())

    def part10(self, n: int) -> bytes:
        series, sop = self._uids(n)
        return self._part10.replace(self._sop, sop).replace(self._series, series)

    def number(self, sop_uid: str) -> int | None:
        """``n`` of a SOP Instance UID this catalogue makes, else None."""
        raw = sop_uid.encode()
        if len(raw) != len(self._sop) or not raw.startswith(_SOP_PREFIX):
            return None
        digits = raw[len(_SOP_PREFIX) :]
        return int(digits) if digits.isdigit() else None


def _acceptable(accept: str) -> bool:
    if not accept or "*/*" in accept:
        return True
    return "application/dicom" in accept and (
        "transfer-syntax" not in accept or EXPLICIT_LE in accept or "transfer-syntax=*" in accept
    )


def answer(catalogue: Catalogue, path: str, accept: str) -> tuple[str, dict[str, str], bytes]:
    """(status line, headers, body) of one GET of ``path`` (from the root) under ``accept``."""
    segments = path.split("?", 1)[0].strip("/").split("/")
    n = catalogue.number(segments[-1]) if len(segments) == 6 else None
    if n is None or segments[0] != "studies" or segments[1] != catalogue.study_uid:
        return "404 Not Found", {"Content-Type": "text/plain"}, b"no such instance"
    if not _acceptable(accept):
        return "406 Not Acceptable", {"Content-Type": "text/plain"}, b"not acceptable"
    part10 = catalogue.part10(n)
    head = (
        f"--{BOUNDARY}\r\nContent-Type: application/dicom; transfer-syntax={EXPLICIT_LE}\r\n"
        f"Content-Length: {len(part10)}\r\n\r\n"
    ).encode()
    body = head + part10 + f"\r\n--{BOUNDARY}--\r\n".encode()
    content_type = (
        f'multipart/related; type="application/dicom"; transfer-syntax={EXPLICIT_LE}; '
        f"boundary={BOUNDARY}"
    )
    return "200 OK", {"Content-Type": content_type}, body


class _Connections:
    """Answers GETs on each accepted connection (HTTP/1.1, persistent) and counts them."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.requests = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ", 2)[1]
                accept = ""
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "accept":
                        accept = value.strip()
                self.requests += 1
                status, headers, body = answer(self.catalogue, path, accept)
                headers["Content-Length"] = str(len(body))
                fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                writer.write(f"HTTP/1.1 {status}\r\n{fields}\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def serve(port: int, catalogue: Catalogue) -> None:
    """Answer GETs on 127.0.0.1:``port`` until cancelled."""
    server = await asyncio.start_server(_Connections(catalogue), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


class InstanceSource:
    """``async with InstanceSource(catalogue) as source: source.base_url`` — serving on a free
    loopback port in this event loop; ``requests`` counts the GETs answered so far."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._connections = _Connections(catalogue)
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def requests(self) -> int:
        return self._connections.requests

    async def __aenter__(self) -> InstanceSource:
        self._server = await asyncio.start_server(self._connections, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
