"""A recording upstream: a plain HTTP/1.1 server that keeps every request line and header
exactly as the bytes arrived, and answers a small complete DICOM multipart study.

Used where a test must see what a gateway *sent* (the request-target byte for byte, the
Accept and Authorization headers), which no real source reports. It runs in a thread, so
synchronous tests and gateway processes can use it alike.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Self

from peers.faults import MULTIPART, multipart_body

__all__ = ["Recorded", "Recorder"]


@dataclass(frozen=True, slots=True)
class Recorded:
    target: bytes  # the request-target as received, never decoded
    headers: tuple[tuple[str, str], ...]  # (lower-case name, value) in arrival order

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]


class Recorder:
    """``with Recorder() as up: up.url`` — every request is kept in ``up.requests``.

    ``redirects`` maps a path prefix to ``(status, Location)``: a request whose target
    starts with it is answered with that redirect instead of the study.
    """

    def __init__(self, body: bytes | None = None) -> None:
        self.body = body if body is not None else multipart_body([b"\x00" * 300] * 2)
        self.redirects: dict[str, tuple[int, str]] = {}
        self.requests: list[Recorded] = []
        self.port = 0
        self._socket: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def __repr__(self) -> str:
        return f"Recorder({self.url}, {len(self.requests)} request(s))"

    def __enter__(self) -> Self:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._socket is not None
        self._socket.close()

    def _accept(self) -> None:
        assert self._socket is not None
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:  # closed by __exit__
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                data = connection.recv(65536)
                if not data:
                    return
                head += data
            request_line, *lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            target = request_line.split(b" ")[1]
            headers = tuple(
                (name.strip().lower(), value.strip())
                for name, _, value in (line.decode("latin-1").partition(":") for line in lines)
            )
            self.requests.append(Recorded(target, headers))
            connection.sendall(self._answer(target.decode("latin-1")))

    def _answer(self, target: str) -> bytes:
        for prefix, (status, location) in self.redirects.items():
            if target.startswith(prefix):
                return (
                    f"HTTP/1.1 {status} Redirect\r\nLocation: {location}\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n"
                ).encode()
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {MULTIPART}\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        )
        return head.encode() + self.body
