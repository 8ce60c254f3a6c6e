"""A gateway as its own process (``python -m gateway serve``), as an operator would run it.

:func:`gateway_config` writes the configuration document; :func:`rad_upstream`,
:func:`xca_server` and :func:`xca_spool` write its XCA-I pieces (SOAP upstreams, the
``server.xca`` section) and :func:`soap_url` says where a running gateway answers RAD-69 /
RAD-75.
"""

from __future__ import annotations

import os
import signal
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Self

import yaml

from peers.net import free_port, wait_http
from peers.process import PeerProcess

__all__ = [
    "XCA_PATH",
    "GatewayProcess",
    "gateway_config",
    "rad_upstream",
    "soap_url",
    "xca_server",
    "xca_spool",
]

REPO = Path(__file__).resolve().parent.parent
XCA_PATH = "/xcai"  # where tests put the SOAP endpoint unless they say otherwise


def gateway_config(
    *,
    home_community_id: str,
    port: int,
    upstreams: dict[str, dict[str, Any]],
    communities: dict[str, str] | None = None,
    sources: dict[str, str] | None = None,
    base_path: str = "/wado",
    url_policy: dict[str, Any] | None = None,
    address_policy: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    xca: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A configuration document for one gateway on 127.0.0.1:``port``.

    Every peer of the tests, the demo and the benchmark listens on 127.0.0.1, so the
    ``address_policy`` here allows loopback unless one is given; the gateway's own default
    (no ``address_policy`` section) refuses it.

    XCA-I: ``upstreams`` may hold :func:`rad_upstream` entries, ``communities`` name
    ``rad-75`` upstreams and ``sources`` ``rad-69`` (or ``wado-rs``) ones; ``xca`` (from
    :func:`xca_server`) becomes ``server.xca`` and opens the SOAP endpoint.
    """
    document: dict[str, Any] = {
        "self": {
            "home_community_id": home_community_id,
            "audit_source_id": f"gateway-{home_community_id}",
        },
        "server": {"host": "127.0.0.1", "port": port, "base_path": base_path},
        "upstreams": upstreams,
        "communities": communities or {},
        "sources": sources or {},
        "address_policy": {"allow_loopback": True} if address_policy is None else address_policy,
    }
    if url_policy is not None:
        document["url_policy"] = url_policy
    if xca is not None:
        document["server"]["xca"] = xca
    document.update(extra or {})
    return document


def rad_upstream(
    protocol: Literal["rad-69", "rad-75"],
    urls: Sequence[str],
    *,
    document_request_namespace: str | None = None,
    **settings: Any,
) -> dict[str, Any]:
    """An ``upstreams`` entry for a SOAP peer: an Imaging Document Source (``rad-69``) or
    another community's responding gateway (``rad-75``), reached at ``urls`` (its endpoint
    URLs, failovers after the first). ``document_request_namespace`` is written only when
    given (the gateway's default is xds-b); ``settings`` are further upstream keys
    (``timeouts``, ``tls``…) written as given."""
    entry: dict[str, Any] = {"protocol": protocol, "base_urls": list(urls)}
    if document_request_namespace is not None:
        entry["document_request_namespace"] = document_request_namespace
    entry.update(settings)
    return entry


def xca_server(
    *,
    path: str = XCA_PATH,
    max_envelope_bytes: int | None = None,
    max_inline_bytes: int | None = None,
    concurrency: int | None = None,
    any_transfer_syntaxes: Sequence[str] | None = None,
    spool: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``server.xca`` section; keys left None are not written (the gateway's defaults
    apply). ``spool`` comes from :func:`xca_spool`."""
    section: dict[str, Any] = {"path": path}
    syntaxes = None if any_transfer_syntaxes is None else list(any_transfer_syntaxes)
    optional = {
        "max_envelope_bytes": max_envelope_bytes,
        "max_inline_bytes": max_inline_bytes,
        "concurrency": concurrency,
        "any_transfer_syntaxes": syntaxes,
        "spool": spool,
    }
    section.update({key: value for key, value in optional.items() if value is not None})
    return section


def xca_spool(
    directory: Path | str, *, max_bytes: int | None = None, max_request_bytes: int | None = None
) -> dict[str, Any]:
    """The ``server.xca.spool`` section; caps left None are not written."""
    section: dict[str, Any] = {"directory": str(directory)}
    if max_bytes is not None:
        section["max_bytes"] = max_bytes
    if max_request_bytes is not None:
        section["max_request_bytes"] = max_request_bytes
    return section


def soap_url(gateway: GatewayProcess) -> str:
    """``http(s)://127.0.0.1:port/xcai``: where ``gateway`` answers RAD-69 / RAD-75 (the
    ``server.xca.path`` of its configuration)."""
    section = gateway.config.get("server", {}).get("xca") or {}
    return f"{gateway.url}{section.get('path', XCA_PATH)}"


class GatewayProcess(PeerProcess):
    """``with GatewayProcess(folder, config) as gw: gw.endpoint`` — started, ready, stopped."""

    def __init__(
        self,
        folder: Path,
        config: dict[str, Any],
        *,
        name: str = "gateway",
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        """``client_ssl``: how to reach a gateway that serves HTTPS (``server.tls``), with
        a client certificate when it requires one."""
        self.folder = folder
        self.config = config
        self.name = name
        self.client_ssl = client_ssl
        server = config.setdefault("server", {})
        self.port: int = server.setdefault("port", free_port())
        self.base_path: str = server.get("base_path", "/wado")
        # One worker unless the test asks for more; its own state directory and admin port,
        # so that two gateways of one test never share either.
        server.setdefault("workers", 1)
        server.setdefault("state_directory", str(folder / f"{name}-state"))
        admin = server.setdefault("admin", {})
        self.admin_port: int = admin.setdefault("port", free_port())
        # The audit trail of this process lives in its own folder unless the test says where.
        self.audit_folder = folder / f"{name}-audit"
        config.setdefault(
            "audit",
            {
                "file": {"path": str(self.audit_folder / "audit.log")},
                "journal": {"directory": str(self.audit_folder / "journal")},
            },
        )
        self.config_file = folder / f"{name}.yaml"
        self.log_file = folder / f"{name}.log"

    @property
    def url(self) -> str:
        scheme = "https" if self.config.get("server", {}).get("tls") else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """The admin listener: ``/metrics``, ``/admin/…`` (always plain HTTP)."""
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def endpoint(self) -> str:
        """The XC-WADO endpoint, ending in ``/``."""
        return f"{self.url}{self.base_path}/"

    def write_config(self, config: dict[str, Any] | None = None) -> None:
        self.config_file.write_text(yaml.safe_dump(config or self.config, sort_keys=False))

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.write_config()
        self.spawn(
            [sys.executable, "-m", "gateway", "serve", "--config", str(self.config_file)],
            log_file=self.log_file,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            wait_http(f"{self.url}/readyz", alive=self.alive, context=self.client_ssl)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n{self.log()}") from exc
        return self

    def send_signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as when a node dies. ``__enter__`` starts it again."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def metric(self, name: str) -> float | None:
        """One sample from ``/metrics`` (``name`` with its labels as exposed), or None."""
        with urllib.request.urlopen(self.admin_url + "/metrics", timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        return None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

