"""A gateway as its own process (``python -m gateway serve``), as an operator would run it."""

from __future__ import annotations

import os
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Self

import yaml

from peers.net import free_port, wait_http
from peers.process import PeerProcess

__all__ = ["GatewayProcess", "gateway_config"]

REPO = Path(__file__).resolve().parent.parent


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
) -> dict[str, Any]:
    """A configuration document for one gateway on 127.0.0.1:``port``.

    Every peer of the tests, the demo and the benchmark listens on 127.0.0.1, so the
    ``address_policy`` here allows loopback unless one is given; the gateway's own default
    (no ``address_policy`` section) refuses it.
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
    document.update(extra or {})
    return document


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
    def endpoint(self) -> str:
        """The XC-WADO endpoint, ending in ``/``."""
        return f"{self.url}{self.base_path}/"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

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
            if self.url.startswith("https:"):
                _wait_https(f"{self.url}/readyz", self.client_ssl, self.alive)
            else:
                wait_http(f"{self.url}/readyz", alive=self.alive)
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
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as answer:
            for line in answer.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.rsplit(" ", 1)[1])
        return None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


def _wait_https(
    url: str, context: ssl.SSLContext | None, alive: Any, timeout_s: float = 20
) -> None:
    """Poll an HTTPS ``/readyz`` until it answers 200 (``wait_http`` for TLS listeners)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"process died before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout_s} s")
