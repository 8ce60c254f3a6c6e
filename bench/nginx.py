"""nginx from Debian as the proxy an operator would otherwise put at the border, for comparison.

One nginx process tree (master and one worker: one core's worth of relay, like one gateway
process) run in the foreground on loopback, with its configuration, logs, pid file and
temporary files in a folder the benchmark owns. It proxies:

* ``/orthanc/`` to Orthanc's DICOMweb root, ``/static/`` to the static source, on ``port``;
* ``/orthanc/`` to Orthanc over HTTPS, on ``tls_port`` (when a certificate is given), itself
  serving HTTPS: TLS on both legs, the upstream's certificate verified.

Two variants: ``default`` is Debian's configuration as far as proxying goes (4 or 8 KiB
buffers, HTTP/1.0 to the upstream, access log on); ``tuned`` adds ``proxy_buffer_size 256k``
and the buffer settings nginx requires to go with it (four 256 KiB buffers, 256 KiB busy).

A third, ``origin``, is no target but a source: Orthanc's own HTTPS is unusable on Debian
(:mod:`bench.sources`), so HTTPS Orthanc is this nginx (tuned, no access log) serving HTTPS
on ``port`` in front of it.
"""

from __future__ import annotations

import shutil
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import psutil

from peers.net import free_port, wait_http
from peers.process import PeerProcess

__all__ = ["NginxProxy", "TlsFiles", "find_nginx"]

_TUNED = """
        proxy_buffer_size 256k;
        proxy_buffers 4 256k;
        proxy_busy_buffers_size 256k;"""


def find_nginx() -> str:
    """Path of the nginx binary; ``RuntimeError`` if it is not installed."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx; `make deps` does it)")
    return binary


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsFiles:
    """The server certificate and key nginx presents, the CA it trusts for the upstream, and
    the name the upstream's certificate carries."""

    cert: Path
    key: Path
    ca: Path
    upstream_name: str = "localhost"


class NginxProxy(PeerProcess):
    """``with NginxProxy(folder, "tuned", orthanc=..., static=...) as proxy: proxy.url``."""

    def __init__(
        self,
        folder: Path,
        variant: str,
        *,
        orthanc: str,
        static: str = "",
        orthanc_tls: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        """``orthanc``, ``static``, ``orthanc_tls``: ``scheme://host:port/path/`` upstreams."""
        if variant not in ("default", "tuned", "origin"):
            raise ValueError(f"unknown nginx variant {variant!r}")
        self.folder = folder / f"nginx-{variant}"
        self.variant = variant
        self.port = free_port()
        self.tls_port = free_port() if tls is not None and variant != "origin" else None
        self._orthanc, self._static = orthanc, static
        self._orthanc_tls, self._tls = orthanc_tls, tls

    @property
    def url(self) -> str:
        scheme = "https" if self.variant == "origin" else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        assert self.tls_port is not None
        return f"https://127.0.0.1:{self.tls_port}"

    @property
    def pids(self) -> list[int]:
        """The master and its workers: the processes whose CPU is the relay's."""
        assert self.process is not None
        master = psutil.Process(self.process.pid)
        return [master.pid, *(child.pid for child in master.children())]

    def config(self) -> str:
        tuned = _TUNED if self.variant != "default" else ""
        if self.variant == "origin":
            assert self._tls is not None
            return self._document(
                f"""
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {self._tls.cert};
        ssl_certificate_key {self._tls.key};
        access_log off;
        location = /ping {{ return 200 "ok"; }}
        location / {{ proxy_pass {self._orthanc};{tuned} }}
    }}"""
            )
        servers = f"""
    server {{
        listen 127.0.0.1:{self.port};
        location = /ping {{ return 200 "ok"; }}
        location /orthanc/ {{ proxy_pass {self._orthanc};{tuned} }}
        location /static/ {{ proxy_pass {self._static};{tuned} }}
    }}"""
        if self._tls is not None and self._orthanc_tls is not None:
            tls = self._tls
            servers += f"""
    server {{
        listen 127.0.0.1:{self.tls_port} ssl;
        ssl_certificate {tls.cert};
        ssl_certificate_key {tls.key};
        location = /ping {{ return 200 "ok"; }}
        location /orthanc/ {{
            proxy_pass {self._orthanc_tls};
            proxy_ssl_verify on;
            proxy_ssl_trusted_certificate {tls.ca};
            proxy_ssl_name {tls.upstream_name};{tuned}
        }}
    }}"""
        return self._document(servers)

    def _document(self, servers: str) -> str:
        folder = self.folder
        return f"""# written by bench/nginx.py ({self.variant})
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/client_body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
{servers}
}}
"""

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "nginx.conf"
        config_file.write_text(self.config())
        command = [find_nginx(), "-p", str(self.folder), "-c", str(config_file)]
        self.spawn([*command, "-g", "daemon off;"], log_file=self.folder / "stderr.log")
        try:
            context = None
            if self.variant == "origin":
                ca = str(self._tls.ca) if self._tls else None
                context = ssl.create_default_context(cafile=ca)
            wait_http(f"{self.url}/ping", alive=self.alive, context=context)
        except Exception as exc:
            self.stop()
            log = (self.folder / "stderr.log").read_text(errors="replace")
            raise RuntimeError(f"nginx {self.variant} did not start:\n{log}") from exc
        return self

