"""An upstream faulted at any offset and in any framing never yields a complete-looking answer
that differs from its body, nor a stream that neither completes nor aborts (issue 16).

The sweep: framing (Content-Length, chunked, close-delimited) x fault (reset, clean close,
stall, malformed chunk size then stall or close, early last chunk, none) x offset, for three
kinds of answer — a multipart DICOM study (the only one with an end of its own: the close
delimiter), DICOM JSON metadata (rewritten on the way) and a rendered JPEG. In-process for
the whole sweep; through two gateway processes for a subset.

The oracle, per case. HTTP/1.1 says when the upstream's *message* is complete: a
Content-Length body once all its bytes came, a chunked one at its last chunk, a
close-delimited one at an orderly close (RFC 9112 §6.3). A complete message of a multipart
answer must also hold its close delimiter (RFC 2046). When both hold, the client must get
exactly that message's body (rewritten, for metadata) with a proper end. Otherwise the
client must see an abort — or a 5xx problem, when the fault came with the head — within
``read_idle_s`` (plus a margin for a loaded machine) of the last byte it received, having
received only a prefix of the answer. A clean close of a close-delimited body or an early
last chunk is, by HTTP, the end of the message: for a single-part answer nothing in the
bytes can say otherwise, so there the client gets the shorter message, exactly.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from peers.chain import COMMUNITY_A, RLUID, chain_configs
from peers.faults import MULTIPART, Fault, FaultUpstream, Framing, Script, multipart_body
from peers.gateway import GatewayProcess
from tests.functional.inprocess import running_gateway
from tests.functional.received import Received, receive

IDLE_S = 1.0
MARGIN_S = 1.5  # scheduling on a busy 2-core machine, two hops
STALL_S = IDLE_S + MARGIN_S + 3  # longer than any wait the oracle allows

FAULTS: dict[Framing, tuple[Fault, ...]] = {
    "length": ("none", "reset", "close", "stall"),
    "chunked": ("none", "reset", "close", "stall", "bad-chunk", "bad-chunk-close", "last-chunk"),
    "close": ("none", "reset", "close", "stall"),
}
BAD_SIZES = (b"zz", b"-1", b"1" * 25, b"1x", b" 5")


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    content_type: str
    body: bytes
    tail: str  # the request path after the study UID
    close_end: int | None = None  # multipart: where its close delimiter ends

    def ends_well(self, message: bytes) -> bool:
        """Whether a complete message of this kind may be relayed as complete: a multipart
        one ends with its close delimiter, then nothing or the CRLF that follows it here (a
        lone CR after it is no transport padding)."""
        if self.close_end is None:
            return True
        return len(message) == self.close_end or len(message) >= self.close_end + 2


def kinds(upstream_base: str) -> list[Kind]:
    study = multipart_body([bytes(range(256)) * 5, b"DICM" * 100, bytes(300)])
    metadata = (
        b'[{"00081190": {"vr": "UR", "Value": ["'
        + upstream_base.encode()
        + b'studies/1.2"]}, "7FE00010": {"vr": "OB", "BulkDataURI": "'
        + upstream_base.encode()
        + b'studies/1.2/series/1.3/instances/1.4/bulk/7fe00010"}, "00100010": '
        + b'{"vr": "PN", "Value": [{"Alphabetic": "'
        + b"x" * 400
        + b'"}]}}]'
    )
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 6 + b"\xff\xd9"
    return [
        Kind("study", MULTIPART, study, "", close_end=len(study) - 2),  # "--b--" then CRLF
        Kind("metadata", "application/dicom+json", metadata, "/metadata"),
        Kind("rendered", "image/jpeg", jpeg, "/rendered"),
    ]


@dataclass(frozen=True, slots=True)
class Case:
    kind: Kind
    framing: Framing
    fault: Fault
    offset: int
    bad_size: bytes = b"zz"

    @property
    def message(self) -> bytes | None:
        """The upstream's message body if HTTP calls it complete, else None."""
        body = self.kind.body
        if self.fault == "none":
            return body
        if self.framing == "length" and self.offset >= len(body):
            return body
        if self.framing == "chunked" and self.fault == "last-chunk":
            return body[: self.offset]
        if self.framing == "close" and self.fault == "close":
            return body[: self.offset]
        return None

    def script(self) -> Script:
        return Script(
            headers={"Content-Type": self.kind.content_type},
            body=self.kind.body,
            framing=self.framing,
            fault=self.fault,
            offset=self.offset,
            chunk=700,
            bad_size=self.bad_size,
        )

    def __str__(self) -> str:
        extra = f" {self.bad_size!r}" if self.fault.startswith("bad") else ""
        return f"{self.kind.name}/{self.framing}/{self.fault}@{self.offset}{extra}"


def cases(all_kinds: list[Kind]) -> Iterator[Case]:
    sizes = itertools.cycle(BAD_SIZES)
    for kind in all_kinds:
        size = len(kind.body)
        offsets = sorted({0, 1, 37, size // 3, size // 2, size - 1, size})
        for framing, faults in FAULTS.items():
            for fault in faults:
                for offset in [size] if fault == "none" else offsets:
                    yield Case(kind, framing, fault, offset, next(sizes))
        if kind.close_end is not None:  # every offset around the close delimiter
            near = range(kind.close_end - 30, size + 1)
            for offset in near:
                yield Case(kind, "close", "close", offset)
                yield Case(kind, "chunked", "last-chunk", offset)
            for offset in near[::4]:
                yield Case(kind, "close", "reset", offset)


Fetch = Callable[[str, Case], Awaitable[Received]]


def verdict(case: Case, got: Received, expected: bytes | None, full: bytes) -> str | None:
    """Why ``got`` breaks the contract for ``case``; None when it keeps it."""
    if got.ending == "hung":
        return f"{case}: neither complete nor aborted after {got.wait_s:.1f} s"
    if expected is not None:  # a complete message: exactly it, properly ended
        if (got.status, got.ending) != (200, "complete"):
            return f"{case}: complete message, but {got.status} {got.ending}"
        if got.body != expected:
            return f"{case}: complete, but {len(got.body)} bytes differ from {len(expected)}"
        return None
    if got.complete and got.status == 200:
        return f"{case}: a cut answer ended like a complete one ({len(got.body)} bytes)"
    if got.status == 200 and not full.startswith(got.body):
        return f"{case}: the bytes received are not the start of the answer"
    if got.status not in (0, 200) and got.status < 500:
        return f"{case}: status {got.status}"
    if got.wait_s > IDLE_S + MARGIN_S:
        return f"{case}: aborted {got.wait_s:.2f} s after its last byte"
    return None


async def sweep(
    up: FaultUpstream, url_of: Callable[[Kind, str], str], chosen: list[Case], parallel: int
) -> list[str]:
    """Run ``chosen`` against the gateway at ``url_of``; the contract breaches found."""
    gate = asyncio.Semaphore(parallel)
    counter = itertools.count(1)
    references: dict[bytes, bytes] = {}

    async def fetch(kind: Kind, script: Script) -> Received:
        uid = f"1.2.826.0.1.3680043.10.77.{next(counter)}"
        up.scripts[uid] = script
        return await receive(url_of(kind, uid), deadline_s=IDLE_S + MARGIN_S + 4)

    async def reference(kind: Kind, message: bytes) -> bytes:
        """The gateway's answer for ``message`` sent whole: the bytes themselves, rewritten
        for metadata (its URL rewriting is tested on its own)."""
        if kind.name != "metadata":
            return message
        if message not in references:
            script = Script(headers={"Content-Type": kind.content_type}, body=message)
            got = await fetch(kind, script)
            assert got.complete, got
            references[message] = got.body
        return references[message]

    async def run(case: Case) -> str | None:
        async with gate:
            message = case.message
            expected = None
            if message is not None and case.kind.ends_well(message):
                expected = await reference(case.kind, message)
            full = await reference(case.kind, case.kind.body)
            return verdict(case, await fetch(case.kind, case.script()), expected, full)

    found = await asyncio.gather(*(run(case) for case in chosen))
    return [f for f in found if f is not None]


async def test_every_fault_at_every_offset_in_every_framing_in_process() -> None:
    async with FaultUpstream(stall_s=STALL_S) as up:
        base = up.base_url + "scripted/"
        async with running_gateway({"scripted": [base]}, read_idle_s=IDLE_S) as gw:
            chosen = list(cases(kinds(base)))
            found = await sweep(
                up, lambda k, uid: gw.url("scripted", f"studies/{uid}{k.tail}"), chosen, 24
            )
    assert len(chosen) > 300
    assert not found, f"{len(found)} of {len(chosen)} cases break the contract:\n" + "\n".join(
        found[:40]
    )


async def test_faults_through_two_gateway_processes(tmp_path: Path) -> None:
    async with FaultUpstream(stall_s=STALL_S) as up:
        base = up.base_url + "scripted/"
        responding, initiating = chain_configs(base)
        for config in (responding, initiating):
            for upstream in config["upstreams"].values():
                upstream["timeouts"] = {"connect_s": 2, "read_idle_s": IDLE_S}
        all_kinds = kinds(base)
        chosen = [
            c
            for c in cases(all_kinds)
            if c.kind.name != "metadata"  # rewritten twice on this path; in-process covers it
            and (c.offset in (37, len(c.kind.body) // 2, len(c.kind.body)) or c.fault == "none")
        ]
        with (
            GatewayProcess(tmp_path, responding, name="responding-a") as a,
            GatewayProcess(tmp_path, initiating, name="initiating-b") as b,
        ):
            prefix = f"homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/studies/"
            found = await sweep(up, lambda k, uid: f"{b.endpoint}{prefix}{uid}{k.tail}", chosen, 16)
            assert a.alive() and b.alive()
    assert len(chosen) > 60
    assert not found, f"{len(found)} of {len(chosen)} cases break the contract:\n" + "\n".join(
        found[:40]
    )
