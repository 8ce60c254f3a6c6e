"""Prometheus (Debian ``prometheus``) scraping a gateway, on loopback, with its own storage."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import yaml

from peers.net import free_port, wait_http

__all__ = ["PrometheusServer"]


class PrometheusServer:
    """``with PrometheusServer(folder, ["127.0.0.1:8080"]) as prom: prom.query("up")``."""

    def __init__(self, folder: Path, targets: list[str], *, interval_s: float = 0.5) -> None:
        self.folder = folder
        self.targets = targets
        self.interval_s = interval_s
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed (apt-get install prometheus)")
        self.folder.mkdir(parents=True, exist_ok=True)
        interval = f"{int(self.interval_s * 1000)}ms"
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {"job_name": "mado-gateway", "static_configs": [{"targets": self.targets}]}
            ],
        }
        config_file = self.folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        log = (self.folder / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            wait_http(
                f"{self.url}/-/ready",
                timeout_s=30,
                alive=lambda: self.process and self.process.poll() is None,
            )
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Instant query; the list of ``{"metric": labels, "value": [t, "v"]}`` results."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as answer:
            document = json.loads(answer.read())
        if document.get("status") != "success":
            raise RuntimeError(f"query failed: {document}")
        result: list[dict[str, Any]] = document["data"]["result"]
        return result
