"""A real FHIR R4 server on loopback: Medplum's FHIR router and in-memory repository behind the
adapter in ``peers/fhir/server.mjs`` (installed by ``make fhir-peer``).

``with FhirServer(folder) as fhir: fhir.base_url`` starts it; :meth:`FhirServer.restart` stops
it and starts it again on the same port. ``FhirServer(folder, tls=ServerTls(cert, key, ca))``
serves https with that certificate chain and key (made per test with trustme, as in
``tests/security/pki.py``); the test client here verifies it with the CA file ``ca``. Every
write is stored in ``folder/store.ndjson`` before it is acknowledged and replayed at start, so a
restart keeps what was acknowledged.
The server validates every resource it is given against the FHIR R4 definitions and refuses
an invalid one with 400.
"""

from __future__ import annotations

import json
import shutil
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from peers.net import free_port
from peers.process import PeerProcess

__all__ = ["FHIR_PEER", "FhirServer", "ServerTls", "fhir_peer_available"]

FHIR_PEER = Path(__file__).resolve().parent / "fhir"
_FHIR_JSON = "application/fhir+json"


def fhir_peer_available() -> str | None:
    """None when the peer can start, else why not and what to run (``make fhir-peer``)."""
    if shutil.which("node") is None:
        return "node is not installed: run make system-deps, then make fhir-peer"
    if not (FHIR_PEER / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return "peers/fhir has no node_modules: run make fhir-peer"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTls:
    """The server's PEM certificate chain and key, and the CA file that verifies them."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class FhirServer(PeerProcess):
    """The FHIR peer; see the module docstring."""

    def __init__(
        self, folder: Path, *, port: int | None = None, tls: ServerTls | None = None
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.tls = tls
        self._context = (
            ssl.create_default_context(cafile=str(tls.ca_file)) if tls is not None else None
        )

    @property
    def base_url(self) -> str:
        """The FHIR base URL, ending in ``/`` (https with ``tls``)."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/"

    def __enter__(self) -> Self:
        self.start()
        return self

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        argv = [
            "node",
            "--experimental-websocket",  # @medplum/core wants Node 22's global WebSocket
            "--no-warnings",
            str(FHIR_PEER / "server.mjs"),
            "--port",
            str(self.port),
            "--store",
            str(self.folder / "store.ndjson"),
        ]
        if self.tls is not None:
            argv += ["--cert", str(self.tls.cert_file), "--key", str(self.tls.key_file)]
        self.spawn(argv, log_file=self.folder / "fhir.log", cwd=FHIR_PEER)
        try:
            self._wait_ready(timeout_s=60)
        except Exception:
            self.stop()
            raise

    def _wait_ready(self, *, timeout_s: float) -> None:
        """Poll ``[base]metadata`` until it answers; raise ``TimeoutError`` or, when the
        process died, ``RuntimeError``."""
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the FHIR server died; see {self.folder / 'fhir.log'}")
            try:
                self._call("GET", "metadata")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                last = exc
            time.sleep(0.05)
        raise TimeoutError(f"{self.base_url}metadata did not answer within {timeout_s} s ({last})")

    def restart(self) -> None:
        self.stop()
        self.start()

    # -- a minimal client for the tests -------------------------------------------------

    def create(self, resource: dict[str, Any]) -> dict[str, Any]:
        """POST ``resource``; the stored resource (with its id). Raises ``HTTPError``."""
        created: dict[str, Any] = self._call("POST", resource["resourceType"], resource)
        return created

    def delete(self, resource_type: str, resource_id: str) -> None:
        self._call("DELETE", f"{resource_type}/{resource_id}")

    def search(self, resource_type: str, **params: str) -> list[dict[str, Any]]:
        """Every resource a search finds, page by page (``_count`` and ``_offset``: the engine
        writes no ``next`` link)."""
        found: list[dict[str, Any]] = []
        while True:
            query = urllib.parse.urlencode({**params, "_count": "500", "_offset": len(found)})
            bundle = self._call("GET", f"{resource_type}?{query}")
            page = [entry["resource"] for entry in bundle.get("entry", [])]
            found += page
            if len(page) < 500:
                return found

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": _FHIR_JSON, "Accept": _FHIR_JSON},
        )
        with urllib.request.urlopen(request, timeout=30, context=self._context) as answer:
            return json.load(answer)
