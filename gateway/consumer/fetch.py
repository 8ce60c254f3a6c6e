"""Retrieving planned URLs and storing each returned instance, without holding a study.

Each URL is a WADO-RS "Get Instances" request (PS3.18 §10.4) whose Accept asks for the objects
as stored — ``multipart/related; type="application/dicom"; transfer-syntax=*`` (PS3.18
§8.7.3.5.2) — unless the caller names a transfer syntax: a manifest retrieval hands back what
the source keeps, never a transcoded copy (a source such as Orthanc transcodes to Explicit VR
Little Endian when the Accept names no transfer syntax). The answer is split as it arrives
(:mod:`gateway.relay.multipart`) and every part goes to a :class:`PartWriter` from the chosen
sink: :class:`DirectorySink` writes Part 10 files named by their SOP Instance UID,
:class:`MemorySink` keeps small objects (the Key Object series) for reading.

A study- or series-level URL may have instance-level fallbacks, retrieved instead when the
gateway answers it with the problem ``instance-list-required`` (XCA-I cannot list a study's
instances; the manifest can).

A retrieval either completes — the closing boundary was seen — or raises
:class:`~gateway.consumer.RetrieveFailed`; a part cut short is removed, never left looking
complete. A 206 answer is accepted: MADO X.1.1.2 tells a consumer to expect more or fewer
instances than a manifest lists, and the report says which.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import aiohttp
import orjson

from gateway.consumer import RetrieveFailed
from gateway.consumer.reading import body_chunks
from gateway.relay.dicomheader import read_identity
from gateway.relay.multipart import (
    MultipartError,
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
)
from routing.media import MediaType

__all__ = [
    "AS_STORED",
    "INSTANCE_LIST_REQUIRED",
    "PROBLEM_PREFIX",
    "DirectorySink",
    "FetchReport",
    "MemorySink",
    "PartWriter",
    "dicom_accept",
    "fetch_all",
]

PROBLEM_PREFIX = "urn:mado-gateway:problem:"
"""How the gateway's problem types begin (RFC 9457 ``type``)."""
INSTANCE_LIST_REQUIRED = "instance-list-required"
"""The problem of a study or series the gateway cannot list (its upstream speaks XCA-I)."""
UPSTREAM_STATUS = "upstream-status"
"""The problem of a gateway relaying an upstream's error status."""
AS_STORED = "*"  # the transfer-syntax parameter value for "as the origin server has it"
_IDENTITY_BYTES = 16 * 1024


class PartWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    def finish(self) -> str | None:
        """Store the complete part; its SOP Instance UID when readable."""
        ...

    def discard(self) -> None: ...


class Sink(Protocol):
    def begin(self) -> PartWriter: ...


@dataclass
class FetchReport:
    """What arrived, and what failed."""

    received: list[str] = field(default_factory=list)  # SOP Instance UIDs, in arrival order
    unnamed: int = 0  # parts without a readable SOP Instance UID
    bytes: int = 0
    failures: list[RetrieveFailed] = field(default_factory=list)
    expanded: list[str] = field(default_factory=list)  # retrieved instance by instance instead

    def compare(self, expected: set[str]) -> tuple[list[str], list[str]]:
        """``(missing, extra)`` against the instances the manifest lists for the selection."""
        got = set(self.received)
        return sorted(expected - got), sorted(got - expected)


class _FileWriter:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        descriptor, name = tempfile.mkstemp(dir=folder / ".incoming", suffix=".part")
        self._file = os.fdopen(descriptor, "wb")
        self._path = Path(name)
        self._head = bytearray()

    def write(self, data: bytes) -> None:
        if len(self._head) < _IDENTITY_BYTES:
            self._head += data[: _IDENTITY_BYTES - len(self._head)]
        self._file.write(data)

    def finish(self) -> str | None:
        self._file.close()
        identity = read_identity(bytes(self._head))
        if identity is None or identity.sop_instance_uid is None:
            target = self._folder / "unnamed" / self._path.with_suffix(".dcm").name
            uid = None
        else:
            target = (
                self._folder
                / (identity.study_uid or "unknown-study")
                / (identity.series_uid or "unknown-series")
                / f"{identity.sop_instance_uid}.dcm"
            )
            uid = identity.sop_instance_uid
        target.parent.mkdir(parents=True, exist_ok=True)
        self._path.replace(target)
        return uid

    def discard(self) -> None:
        self._file.close()
        self._path.unlink(missing_ok=True)


class DirectorySink:
    """Part 10 files as ``folder/{study}/{series}/{sop}.dcm``; parts in flight in ``.incoming``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / ".incoming").mkdir(parents=True, exist_ok=True)

    def begin(self) -> PartWriter:
        return _FileWriter(self.folder)

    def close(self) -> None:
        with contextlib.suppress(OSError):  # not empty: a part was left by a failure
            (self.folder / ".incoming").rmdir()


class _MemoryWriter:
    def __init__(self, sink: MemorySink) -> None:
        self._sink = sink
        self._data = bytearray()

    def write(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self._sink.limit_bytes:
            raise MemoryError(f"a part exceeded {self._sink.limit_bytes} bytes")

    def finish(self) -> str | None:
        data = bytes(self._data)
        self._sink.objects.append(data)
        identity = read_identity(data)
        return identity.sop_instance_uid if identity else None

    def discard(self) -> None:
        self._data.clear()


class MemorySink:
    """Objects kept in memory: only for small ones such as Key Object Selection documents."""

    def __init__(self, limit_bytes: int = 16 * 1024 * 1024) -> None:
        self.limit_bytes = limit_bytes
        self.objects: list[bytes] = []

    def begin(self) -> PartWriter:
        return _MemoryWriter(self)


Progress = Callable[[FetchReport], None]


def dicom_accept(transfer_syntax: str = AS_STORED) -> str:
    """The Accept of a Get Instances request for ``transfer_syntax`` (a UID, or ``*``)."""
    parameters = (("type", "application/dicom"), ("transfer-syntax", transfer_syntax))
    return str(MediaType(type="multipart", subtype="related", parameters=parameters))


async def fetch_all(
    urls: Sequence[str],
    sink: Sink,
    *,
    session: aiohttp.ClientSession,
    concurrency: int = 4,
    progress: Progress | None = None,
    accept: str | None = None,
    read_idle_s: float = 120.0,
    fallbacks: Mapping[str, Sequence[str]] | None = None,
) -> FetchReport:
    """Retrieve every URL (at most ``concurrency`` at once); failures are collected, not raised.

    ``accept`` defaults to :func:`dicom_accept` (the objects as stored). A retrieval whose
    answer sends nothing for ``read_idle_s`` fails (the limit is ours, not the HTTP parser's).
    ``fallbacks`` maps a study- or series-level URL to the instance-level URLs of what the
    manifest lists for it: when the gateway answers it with the problem
    ``instance-list-required`` (409: its community speaks XCA-I and it holds no instance
    list; an initiating gateway relays it as a 409 ``upstream-status``), those are retrieved
    instead, and the URL is listed in :attr:`FetchReport.expanded`.
    """
    report = FetchReport()
    gate = asyncio.Semaphore(concurrency)
    headers = {"Accept": accept or dicom_accept()}
    expand = fallbacks or {}

    async def one(url: str, *, fallback: bool = True) -> None:
        async with gate:
            try:
                await _retrieve(
                    url,
                    sink,
                    session,
                    report,
                    progress=progress,
                    headers=headers,
                    idle_s=read_idle_s,
                )
            except RetrieveFailed as failure:
                if fallback and _needs_instances(failure) and url in expand:
                    report.expanded.append(url)
                else:
                    report.failures.append(failure)

    await asyncio.gather(*(one(url) for url in urls))
    instance_urls = [u for url in report.expanded for u in expand[url]]
    await asyncio.gather(*(one(url, fallback=False) for url in instance_urls))
    return report


def _needs_instances(failure: RetrieveFailed) -> bool:
    """A 409 ``instance-list-required``, or that 409 relayed by an initiating gateway (which
    answers an upstream's 4xx with its own problem, ``upstream-status``, never the
    upstream's body)."""
    return failure.status == 409 and failure.problem in (INSTANCE_LIST_REQUIRED, UPSTREAM_STATUS)


async def _retrieve(
    url: str,
    sink: Sink,
    session: aiohttp.ClientSession,
    report: FetchReport,
    *,
    progress: Progress | None,
    headers: dict[str, str],
    idle_s: float,
) -> None:
    writer: PartWriter | None = None
    try:
        async with session.get(url, headers=headers) as answer:
            if answer.status not in (200, 206):
                reason, problem = await _describe_failure(answer)
                raise RetrieveFailed(url, reason, answer.status, problem)
            splitter = MultipartSplitter(boundary_of(answer.headers.get("Content-Type", "")))
            async for chunk in body_chunks(answer.content, idle_s):
                report.bytes += len(chunk)
                for event in splitter.feed(chunk):
                    match event:
                        case PartStart():
                            writer = sink.begin()
                        case PartBytes(data) if writer is not None:
                            writer.write(data)
                        case PartEnd() if writer is not None:
                            uid = writer.finish()
                            writer = None
                            if uid is None:
                                report.unnamed += 1
                            else:
                                report.received.append(uid)
                            if progress is not None:
                                progress(report)
            splitter.close()
    except MultipartError as exc:
        raise RetrieveFailed(url, f"the answer was cut short or malformed: {exc}") from None
    except aiohttp.ClientError as exc:
        raise RetrieveFailed(url, f"connection failed: {type(exc).__name__}") from None
    except (TimeoutError, MemoryError, OSError) as exc:
        raise RetrieveFailed(url, f"{type(exc).__name__}: {exc}") from None
    finally:
        if writer is not None:
            writer.discard()


async def _describe_failure(answer: aiohttp.ClientResponse) -> tuple[str, str | None]:
    """HTTP status, and the ``detail`` of a problem document (the gateway's own words); the
    problem's slug when it is one of the gateway's."""
    text = f"HTTP {answer.status} {answer.reason or ''}".strip()
    problem = None
    if answer.content_type == "application/problem+json":
        try:
            document = orjson.loads(await answer.content.read(64 * 1024))
        except (orjson.JSONDecodeError, aiohttp.ClientError):
            document = None
        if isinstance(document, dict):
            detail, kind = document.get("detail"), document.get("type")
            if isinstance(detail, str):
                text += f": {detail[:300]}"
            if isinstance(kind, str) and kind.startswith(PROBLEM_PREFIX):
                problem = kind[len(PROBLEM_PREFIX) :][:64]
    return text, problem
