"""A scripted HTTP/1.1 upstream for faults a real source cannot produce on demand.

This is deliberately a fake: Orthanc cannot be told to reset a connection in the middle of a
body, to stall for a given time, or to stop before its closing boundary. Each request's path
picks a scenario (the first segment after the base path); the server writes raw bytes on the
socket so that framing, resets and stalls are exactly as scripted. It also counts accepted
connections and request paths, so a test can prove that an upstream saw nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from peers.studies import make_study

__all__ = ["FaultUpstream", "multipart_body"]

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


@dataclass
class FaultUpstream:
    """``async with FaultUpstream() as up: up.base_url`` — scenarios chosen by path."""

    body: bytes = field(default_factory=lambda: multipart_body([bytes(range(256)) * 40] * 5))
    stall_s: float = 30.0
    big_block: bytes = b""
    big_blocks: int = 0
    connections: int = 0
    paths: list[str] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

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
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
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
            await getattr(self, f"_{scenario.replace('-', '_')}", self._not_found)(writer, path)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

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
        sock = writer.get_extra_info("socket")
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

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
