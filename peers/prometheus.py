"""Prometheus (Debian ``prometheus``) scraping a gateway, on loopback, with its own storage."""

from __future__ import annotations

import json
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Self

import yaml

from peers.net import free_port, wait_http
from peers.process import PeerProcess

__all__ = ["PrometheusServer"]


class PrometheusServer(PeerProcess):
    """``with PrometheusServer(folder, ["127.0.0.1:8080"]) as prom: prom.query("up")``."""

    def __init__(self, folder: Path, targets: list[str], *, interval_s: float = 0.5) -> None:
        self.folder = folder
        self.targets = targets
        self.interval_s = interval_s
        self.port = free_port()

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
        self.spawn(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            log_file=self.folder / "prometheus.log",
        )
        try:
            wait_http(f"{self.url}/-/ready", timeout_s=30, alive=self.alive)
        except Exception:
            self.stop()
            raise
        return self

    def query(self, expression: str) -> list[dict[str, Any]]:
        """Instant query; the list of ``{"metric": labels, "value": [t, "v"]}`` results."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
        with urllib.request.urlopen(url, timeout=10) as answer:
            document = json.loads(answer.read())
        if document.get("status") != "success":
            raise RuntimeError(f"query failed: {document}")
        result: list[dict[str, Any]] = document["data"]["result"]
        return result
