"""Ways to hand syslog messages to an Audit Record Repository.

Each transport is a connection the sender opens, writes batches to, checks and closes. The
contract the sender relies on:

* :meth:`Transport.connect` opens (or reopens) the connection; raises
  :class:`~gateway.audit.errors.TransportError`.
* :meth:`Transport.peer_closed` answers, without blocking and without writing, whether the
  repository has closed the connection (an idle timeout, a restart). The sender asks before
  every write, so a batch is never written into a connection already known to be dead.
* :meth:`Transport.send` writes a batch, or raises ``TransportError``; a batch that raised
  may have been partly received, and is resent whole (at-least-once).
* :meth:`Transport.unconfirmed_bytes` is how many written bytes the peer has not yet
  acknowledged; 0 means everything written so far reached the peer's host.

Transports: :class:`TlsTransport` (RFC 5425, octet counting, mutual TLS), :class:`UdpTransport`
(RFC 5426, a datagram per message, nothing is ever confirmed beyond the local send) and
:class:`FileTransport` (one message per line in a local file; the default).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import ssl
import struct
import termios
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

from gateway.audit.errors import TransportError
from gateway.audit.syslog import frame

__all__ = ["FileTransport", "TlsTransport", "Transport", "UdpTransport", "client_tls_context"]

log = logging.getLogger("mado_gateway.audit.transport")

UDP_MAX_PAYLOAD = 65507  # RFC 5426 §3.2: IPv4 datagram limit less the IP and UDP headers


class Transport(Protocol):
    """What the sender needs from a transport (see the module docstring)."""

    name: str

    async def connect(self) -> None: ...

    def peer_closed(self) -> bool: ...

    async def send(self, messages: Sequence[bytes]) -> None: ...

    def unconfirmed_bytes(self) -> int: ...

    async def close(self) -> None: ...


def client_tls_context(
    *, ca_file: str, cert_file: str, key_file: str, minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2
) -> ssl.SSLContext:
    """A client context for RFC 5425 with mutual authentication (PS3.15 A.6: TLS 1.2 or
    later). Raises ``OSError``/``ssl.SSLError`` when the files cannot be loaded."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = minimum
    context.load_cert_chain(cert_file, key_file)
    return context


class TlsTransport:
    """RFC 5425 syslog over TLS: frames are ``MSG-LEN SP SYSLOG-MSG`` (§4.3).

    Acknowledgement is read from the kernel: bytes still in this side's TLS buffers or TCP
    send queue (``SIOCOUTQ``, Linux) are unconfirmed. Elsewhere only the userspace buffers
    are counted, so a message counts as confirmed once handed to the kernel.
    """

    name = "tls"

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        *,
        server_name: str | None = None,
        connect_timeout_s: float = 5.0,
        write_timeout_s: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.context = context
        self.server_name = server_name or host
        self.connect_timeout_s = connect_timeout_s
        self.write_timeout_s = write_timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        await self.close()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.context,
                    server_hostname=self.server_name,
                    ssl_handshake_timeout=self.connect_timeout_s,
                )
        except ssl.SSLError as exc:
            raise TransportError("tls", str(exc)) from exc
        except TimeoutError as exc:
            raise TransportError(
                "timeout", f"no connection within {self.connect_timeout_s}s"
            ) from exc
        except OSError as exc:
            raise TransportError("connect", str(exc)) from exc
        sock = self._writer.get_extra_info("socket") if self._writer is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def peer_closed(self) -> bool:
        # The event loop reads the socket whenever it is readable, so a FIN or close_notify
        # from the repository has already reached the reader as end-of-file by now.
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            return True
        return writer.is_closing() or reader.at_eof() or reader.exception() is not None

    async def send(self, messages: Sequence[bytes]) -> None:
        writer = self._writer
        if writer is None or self.peer_closed():
            raise TransportError("closed", "the repository closed the connection")
        try:
            writer.write(b"".join(frame(message) for message in messages))
            async with asyncio.timeout(self.write_timeout_s):
                await writer.drain()
        except TimeoutError as exc:
            raise TransportError("timeout", "the repository stopped reading") from exc
        except (OSError, RuntimeError) as exc:
            raise TransportError("write", str(exc) or type(exc).__name__) from exc

    def unconfirmed_bytes(self) -> int:
        writer = self._writer
        if writer is None:
            return 0
        pending = writer.transport.get_write_buffer_size()
        # asyncio keeps the TLS records it could not yet write in the plain transport under
        # the TLS layer; that transport is not public, so look for it defensively.
        inner = getattr(getattr(writer.transport, "_ssl_protocol", None), "_transport", None)
        if inner is not None and hasattr(inner, "get_write_buffer_size"):
            pending += int(inner.get_write_buffer_size())
        sock = writer.get_extra_info("socket")
        if sock is not None:
            pending += _kernel_send_queue(sock.fileno())
        return pending

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is None:
            return
        writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await writer.wait_closed()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.error: Exception | None = None

    def error_received(self, exc: Exception) -> None:
        self.error = exc


class UdpTransport:
    """RFC 5426 syslog over UDP: one SYSLOG-MSG per datagram, unframed (§3.1).

    UDP gives no acknowledgement; a message is confirmed once the kernel took it. A message
    larger than a datagram can carry is logged and skipped rather than retried forever.
    """

    name = "udp"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Datagrams | None = None

    async def connect(self) -> None:
        await self.close()
        loop = asyncio.get_running_loop()
        try:
            self._transport, self._protocol = await loop.create_datagram_endpoint(
                _Datagrams, remote_addr=(self.host, self.port)
            )
        except OSError as exc:
            raise TransportError("connect", str(exc)) from exc

    def peer_closed(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    async def send(self, messages: Sequence[bytes]) -> None:
        transport, protocol = self._transport, self._protocol
        if transport is None or protocol is None:
            raise TransportError("closed", "not connected")
        for message in messages:
            if len(message) > UDP_MAX_PAYLOAD:
                log.error(
                    "audit message too large for UDP; not sent", extra={"bytes": len(message)}
                )
                continue
            transport.sendto(message)
        if protocol.error is not None:
            error, protocol.error = protocol.error, None
            raise TransportError("write", str(error))

    def unconfirmed_bytes(self) -> int:
        return 0

    async def close(self) -> None:
        transport, self._transport, self._protocol = self._transport, None, None
        if transport is not None:
            transport.close()


class FileTransport:
    """Messages appended to a local file, one per line (the XML has no raw line break).

    Writes run in a worker thread and are flushed and ``fsync``-ed before a batch counts as
    sent. The file is reopened when it was moved or deleted (log rotation), and on the write
    after :meth:`reopen` (SIGHUP).
    """

    name = "file"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None
        self._reopen = False

    def reopen(self) -> None:
        """Close and open the file again before the next write (logrotate's postrotate)."""
        self._reopen = True

    async def connect(self) -> None:
        await self.close()
        try:
            self._file = await asyncio.to_thread(self._open)
        except OSError as exc:
            raise TransportError("connect", str(exc)) from exc

    def peer_closed(self) -> bool:
        return self._file is None

    async def send(self, messages: Sequence[bytes]) -> None:
        if self._file is None:
            raise TransportError("closed", "file not open")
        try:
            await asyncio.to_thread(self._write, b"".join(m + b"\n" for m in messages))
        except OSError as exc:
            raise TransportError("write", str(exc)) from exc

    def unconfirmed_bytes(self) -> int:
        return 0

    async def close(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(handle.close)

    def _open(self) -> IO[bytes]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, "ab")

    def _write(self, data: bytes) -> None:
        handle = self._file
        assert handle is not None
        try:
            rotated = os.stat(self.path).st_ino != os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            rotated = True
        if rotated or self._reopen:
            self._reopen = False
            handle.close()
            handle = self._file = self._open()
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _kernel_send_queue(fd: int) -> int:
    """Bytes in the socket's send queue not yet acknowledged by the peer (Linux SIOCOUTQ,
    which equals TIOCOUTQ); 0 where the query is not supported."""
    try:
        answer = fcntl.ioctl(fd, termios.TIOCOUTQ, struct.pack("i", 0))
    except OSError:
        return 0
    return int(struct.unpack("i", answer)[0])
