"""The IHE BALP feed's transport: each rendered AuditEvent POSTed to a FHIR server (ITI-20
"Record Audit Event" with the FHIR feed option: ``POST [base]/AuditEvent``).

The server's answer is the acknowledgement: a message counts as sent once a 2xx came back,
so :meth:`FhirTransport.unconfirmed_bytes` is always 0 and the destination needs no settle
time. Any other answer, or a connection that fails, raises
:class:`~gateway.audit.errors.TransportError` and the sender resends from its cursor: at
least once, so an AuditEvent may reach the server twice (its ``XrequestId`` entity and its
content tell a resend from a new event), and none is lost across a server restart. A server
that refuses an event as invalid (4xx) therefore holds the feed up until it is fixed; the
error is logged with the server's status, never its body.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence

import aiohttp

from gateway.audit.errors import TransportError

__all__ = ["FhirTransport"]

log = logging.getLogger("mado_gateway.audit.transport")

_FHIR_JSON = "application/fhir+json"


class FhirTransport:
    """POSTs AuditEvents to the FHIR server at ``base_url`` (ending in ``/``).

    ``context``: TLS for an https server (None: the system trust store); the settings allow an
    http ``base_url`` only when told to (:class:`~gateway.audit.settings.FhirSettings`).
    ``connect`` opens a session and reads ``[base]metadata``, so an unreachable server, or one
    whose certificate does not verify (reason ``tls``), fails there and the sender backs off.
    """

    name = "fhir"

    def __init__(
        self,
        base_url: str,
        *,
        context: ssl.SSLContext | None = None,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 10.0,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.context = context
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self._session: aiohttp.ClientSession | None = None

    async def connect(self) -> None:
        await self.close()
        connector = aiohttp.TCPConnector(limit=1, ssl=self.context if self.context else True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=self.request_timeout_s, sock_connect=self.connect_timeout_s
            ),
            headers={"Accept": _FHIR_JSON, "User-Agent": "mado-gateway"},
        )
        await self._call("GET", self.base_url + "metadata", None, failure="connect")

    def peer_closed(self) -> bool:
        return self._session is None or self._session.closed

    async def send(self, messages: Sequence[bytes]) -> None:
        if self._session is None:
            raise TransportError("closed", "not connected")
        for message in messages:
            await self._call("POST", self.base_url + "AuditEvent", message, failure="write")

    def unconfirmed_bytes(self) -> int:
        return 0  # every message was answered before send returned

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def _call(self, method: str, url: str, body: bytes | None, *, failure: str) -> None:
        assert self._session is not None
        headers = {"Content-Type": _FHIR_JSON} if body is not None else {}
        try:
            async with self._session.request(method, url, data=body, headers=headers) as answer:
                await answer.read()  # small: an OperationOutcome or the stored resource
                status = answer.status
        except TimeoutError as exc:
            raise TransportError("timeout", f"no answer within {self.request_timeout_s}s") from exc
        except aiohttp.ClientSSLError as exc:  # a handshake or a certificate refused
            raise TransportError("tls", str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise TransportError("connect", str(exc)) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise TransportError(failure, str(exc) or type(exc).__name__) from exc
        if not 200 <= status < 300:
            if 400 <= status < 500 and method == "POST":
                log.error(
                    "the FHIR server refused an AuditEvent; the feed waits until it is fixed",
                    extra={"status": status},
                )
            raise TransportError(failure, f"the FHIR server answered {status}")
