"""A scripted HTTP/1.1 upstream for faults a real source cannot produce on demand.

This is deliberately a fake: Orthanc cannot be told to reset a connection in the middle of a
body, to stall for a given time, or to stop before its closing boundary. Each request's path
picks a scenario (the first segment after the base path); the server writes raw bytes on the
socket so that framing, resets and stalls are exactly as scripted. It also counts accepted
connections and request paths, so a test can prove that an upstream saw nothing.

The ``scripted`` scenario plays a :class:`Script` chosen by a path segment (a test registers
``up.scripts[uid] = Script(...)`` and asks for ``…/scripted/studies/{uid}/…``): any
status line, any framing (Content-Length, chunked, close-delimited) and a fault at any
offset of the body (reset, clean close, stall, malformed chunk size, early last chunk).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from peers.studies import make_study

__all__ = ["BOUNDARY", "MULTIPART", "Fault", "FaultUpstream", "Framing", "Script", "multipart_body"]

BOUNDARY = "fault-boundary-7d1f"
Scenario = Callable[[asyncio.StreamWriter, str], Awaitable[None]]


def multipart_body(parts: list[bytes], boundary: str = BOUNDARY) -> bytes:
    """A complete multipart/related body with one application/dicom part per item."""
    out = bytearray()
    for payload in parts:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        out += payload + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


MULTIPART = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'

Framing = Literal["length", "chunked", "close"]
Fault = Literal["none", "reset", "close", "stall", "bad-chunk", "bad-chunk-close", "last-chunk"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """One scripted answer: ``status`` line, ``headers``, ``body`` in ``framing``.

    ``fault`` strikes after ``offset`` bytes of the body (None: the whole body):

    * ``none`` — the body is sent whole and properly ended, then the connection is closed;
    * ``reset`` — TCP RST (SO_LINGER 0); ``close`` — an orderly close (FIN);
    * ``stall`` — nothing more for ``FaultUpstream.stall_s``, then a close;
    * ``bad-chunk`` / ``bad-chunk-close`` (chunked) — the chunk in progress ends at
      ``offset`` and the next chunk-size line is ``bad_size``; then a stall, or a close;
    * ``last-chunk`` (chunked) — the chunk in progress ends at ``offset``, then the
      terminating chunk: a complete message that is shorter than ``body``.

    ``head_bytes`` replaces the whole status line and header block when given (for answers
    that no well-formed head can express). ``chunk`` is the chunk (and write) size;
    ``pause_s`` separates the fault from the bytes before it (0: they may share a packet).
    """

    status: str = "200 OK"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    framing: Framing = "length"
    fault: Fault = "none"
    offset: int | None = None
    chunk: int = 1024
    bad_size: bytes = b"zz"
    head_bytes: bytes | None = None
    pause_s: float = 0.05

    def head(self) -> bytes:
        if self.head_bytes is not None:
            return self.head_bytes
        # Connection: close whatever the framing: the connection serves this one script (a
        # fault after a complete message must not meet the next request on it).
        headers = {**self.headers, "Connection": "close"}
        if self.framing == "length":
            headers["Content-Length"] = str(len(self.body))
        elif self.framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
        return _head(self.status, headers)


@dataclass
class FaultUpstream:
    """``async with FaultUpstream() as up: up.base_url`` — scenarios chosen by path."""

    body: bytes = field(default_factory=lambda: multipart_body([bytes(range(256)) * 40] * 5))
    stall_s: float = 30.0
    big_block: bytes = b""
    big_blocks: int = 0
    connections: int = 0
    connections_reused: int = 0
    scripts: dict[str, Script] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def __aenter__(self) -> FaultUpstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._handlers:  # stalled scenarios: end them now, quietly
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *header_lines = head.decode("latin-1").split("\r\n")
            path = request_line.split(" ")[1]
            self.paths.append(path)
            self.request_headers.append(
                {
                    k.strip().lower(): v.strip()
                    for k, _, v in (h.partition(":") for h in header_lines if h)
                }
            )
            scenario = path.lstrip("/").split("/")[0]
            if scenario == "keepalive-304":
                await self._keepalive_304(reader, writer)
                return
            await getattr(self, f"_{scenario.replace('-', '_')}", self._not_found)(writer, path)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the test is over (__aexit__): no error to report
            return
        finally:
            if not writer.is_closing():
                writer.close()

    async def _scripted(self, writer: asyncio.StreamWriter, path: str) -> None:
        segments = path.partition("?")[0].split("/")
        script = self.scripts[next(s for s in reversed(segments) if s in self.scripts)]
        body = script.body
        end = len(body) if script.offset is None else min(script.offset, len(body))
        writer.write(script.head())
        if script.framing == "chunked":
            for start in range(0, end, script.chunk):
                piece = body[start : min(start + script.chunk, end)]
                # A cut in mid-chunk announces the whole chunk and sends only its start.
                announced = len(piece)
                if script.fault in ("reset", "close", "stall"):
                    announced = len(body[start : start + script.chunk])
                writer.write(b"%x\r\n" % announced + piece)
                if announced == len(piece):
                    writer.write(b"\r\n")
                await writer.drain()
        else:
            for start in range(0, end, script.chunk):
                writer.write(body[start : min(start + script.chunk, end)])
                await writer.drain()
        await writer.drain()
        if script.fault != "none" and script.pause_s:
            await asyncio.sleep(script.pause_s)
        match script.fault:
            case "none":
                if script.framing == "chunked":
                    rest = body[end:]
                    if rest:
                        writer.write(b"%x\r\n" % len(rest) + rest + b"\r\n")
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(body[end:])
                await writer.drain()
            case "reset":
                _reset(writer)
            case "close":
                pass
            case "stall":
                await asyncio.sleep(self.stall_s)
            case "bad-chunk" | "bad-chunk-close":
                writer.write(script.bad_size + b"\r\n" + body[end : end + 16] + b"\r\n")
                await writer.drain()
                if script.fault == "bad-chunk":
                    await asyncio.sleep(self.stall_s)
            case "last-chunk":
                writer.write(b"0\r\n\r\n")
                await writer.drain()

    async def _keepalive_304(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """A 304 that announces a body, on a kept-alive connection, then honest answers.

        The "body" is a whole HTTP response of its own, sent a moment after the 304's head.
        A client that returns this connection to its pool reads it as the answer to its next
        request on that connection (response splitting).
        """
        smuggled = (
            b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 8\r\n\r\nSMUGGLED"
        )
        writer.write(
            _head("304 Not Modified", {"Content-Length": str(len(smuggled)), "ETag": '"v1"'})
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(smuggled)
        await writer.drain()
        while True:  # later requests on this connection: honest answers, a little late
            await reader.readuntil(b"\r\n\r\n")
            self.connections_reused += 1
            await asyncio.sleep(0.2)
            writer.write(_head("200 OK", {"Content-Type": "image/jpeg", "Content-Length": "4"}))
            writer.write(b"GOOD")
            await writer.drain()

    async def _ok(self, writer: asyncio.StreamWriter, path: str) -> None:
        writer.write(
            _head(
                "200 OK",
                {
                    "Content-Type": MULTIPART,
                    "Content-Length": str(len(self.body)),
                    "Connection": "close",
                },
            )
        )
        writer.write(self.body)
        await writer.drain()

    async def _close_delimited(self, writer: asyncio.StreamWriter, path: str) -> None:
        # Like Orthanc: no Content-Length, no chunking; the end of the body is the close.
        writer.write(
            _head("200 OK", {"Content-Type": MULTIPART, "Connection": "close"}) + self.body
        )
        await writer.drain()

    async def _truncated(self, writer: asyncio.StreamWriter, path: str) -> None:
        # A close-delimited body that stops before its closing boundary: a clean FIN, no error.
        writer.write(_head("200 OK", {"Content-Type": MULTIPART, "Connection": "close"}))
        writer.write(self.body[: len(self.body) // 2])
        await writer.drain()

    async def _reset(self, writer: asyncio.StreamWriter, path: str) -> None:
        writer.write(
            _head("200 OK", {"Content-Type": MULTIPART, "Content-Length": str(len(self.body))})
        )
        writer.write(self.body[: len(self.body) // 2])
        await writer.drain()
        await asyncio.sleep(0.05)
        _reset(writer)

    async def _stall_headers(self, writer: asyncio.StreamWriter, path: str) -> None:
        await asyncio.sleep(self.stall_s)

    async def _stall_body(self, writer: asyncio.StreamWriter, path: str) -> None:
        writer.write(
            _head("200 OK", {"Content-Type": MULTIPART, "Content-Length": str(len(self.body))})
        )
        writer.write(self.body[:1000])
        await writer.drain()
        await asyncio.sleep(self.stall_s)

    async def _status(self, writer: asyncio.StreamWriter, path: str) -> None:
        code = path.strip("/").split("/")[1]
        reason = {
            "404": "Not Found",
            "406": "Not Acceptable",
            "410": "Gone",
            "500": "Internal Server Error",
            "503": "Service Unavailable",
            "302": "Found",
        }[code]
        body = b'{"secret": "internal upstream detail"}'
        writer.write(
            _head(
                f"{code} {reason}",
                {
                    "Content-Type": "application/json",
                    "Content-Length": str(len(body)),
                    "Warning": "299 upstream: status " + code,
                    "Location": "http://127.0.0.1:1/elsewhere",
                },
            )
            + body
        )
        await writer.drain()

    async def _partial(self, writer: asyncio.StreamWriter, path: str) -> None:
        writer.write(
            _head(
                "206 Partial Content",
                {
                    "Content-Type": MULTIPART,
                    "Content-Length": str(len(self.body)),
                    "Warning": "299 upstream: 2 instances not available",
                },
            )
        )
        writer.write(self.body)
        await writer.drain()

    async def _metadata(self, writer: asyncio.StreamWriter, path: str) -> None:
        host = f"http://127.0.0.1:{self.port}/"
        body = (
            '[{"7FE00010": {"vr": "OB", "BulkDataURI": "'
            + host
            + "metadata/studies/1.2/series/1.3/"
            'instances/1.4/bulk/7fe00010"}, "00081190": {"vr": "UR", "Value": ["'
            + host
            + 'metadata/studies/1.2"]}}]'
        )
        data = body.encode()
        writer.write(
            _head(
                "200 OK",
                {"Content-Type": "application/dicom+json", "Content-Length": str(len(data))},
            )
            + data
        )
        await writer.drain()

    async def _big(self, writer: asyncio.StreamWriter, path: str) -> None:
        """A study of ``big_blocks`` parts of ``big_block`` bytes, as fast as the socket takes."""
        part = (
            f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            + self.big_block
            + b"\r\n"
        )
        tail = f"--{BOUNDARY}--\r\n".encode()
        length = len(part) * self.big_blocks + len(tail)
        writer.write(_head("200 OK", {"Content-Type": MULTIPART, "Content-Length": str(length)}))
        for _ in range(self.big_blocks):
            writer.write(part)
            await writer.drain()
        writer.write(tail)
        await writer.drain()

    async def _not_found(self, writer: asyncio.StreamWriter, path: str) -> None:
        writer.write(_head("404 Not Found", {"Content-Length": "0"}))
        await writer.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    # SO_LINGER with a zero timeout turns close() into a TCP RST.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _serve_forever(port: int, side: int, parts: int) -> None:
    instance = make_study(
        seed="bench", series_count=1, instances_per_series=1, rows=side, columns=side
    )
    upstream = FaultUpstream(big_block=instance.instances[0].part10, big_blocks=parts)
    upstream._server = await asyncio.start_server(upstream._serve, "127.0.0.1", port)
    async with upstream._server:
        await upstream._server.serve_forever()


def main() -> None:
    """``python -m peers.faults --port P --side 512 --parts M``: a fast benchmark source.

    Serves one study of M identical CT instances of side x side 16-bit pixels (512: 0.5 MiB)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--parts", type=int, default=2048)
    args = parser.parse_args()
    asyncio.run(_serve_forever(args.port, args.side, args.parts))


if __name__ == "__main__":
    main()
