"""Orthanc with its DICOMweb plugin (Debian ``orthanc``, ``orthanc-dicomweb``) as the
Imaging Document Source, on loopback, with its own configuration and storage."""

from __future__ import annotations

import base64
import json
import os
import shutil
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from peers.net import free_port, wait_http
from peers.process import PeerProcess

__all__ = ["OrthancServer", "find_orthanc"]

_PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc")


def find_orthanc() -> tuple[str, str]:
    """Paths of the Orthanc binary and the DICOMweb plugin; ``RuntimeError`` if missing."""
    binary = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
    plugin = next(
        (
            str(path)
            for folder in _PLUGIN_DIRS
            for path in sorted(Path(folder).glob("libOrthancDicomWeb.so*"))
        ),
        None,
    )
    if not os.path.exists(binary) or plugin is None:
        raise RuntimeError(
            "Orthanc with the DICOMweb plugin is not installed "
            "(apt-get install orthanc orthanc-dicomweb; `make deps` does it)"
        )
    return binary, plugin


class OrthancServer(PeerProcess):
    """A private Orthanc: ``with OrthancServer(folder) as orthanc: orthanc.dicomweb_url``.

    ``users`` (name → password) turns on HTTP basic authentication for every request, as
    most PACS require; the peer's own calls (readiness, uploads) then use the first user.
    """

    def __init__(
        self,
        folder: Path,
        *,
        port: int | None = None,
        name: str = "ids",
        users: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.name = name
        self.users = dict(users or {})

    def _own_headers(self) -> dict[str, str]:
        if not self.users:
            return {}
        user, password = next(iter(self.users.items()))
        pair = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        """The WADO-RS base URL, ending in ``/``."""
        return f"{self.url}/dicom-web/"

    def __enter__(self) -> Self:
        binary, plugin = find_orthanc()
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": self.name,
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "HttpPort": self.port,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.users),
            "RegisteredUsers": self.users,
            "HttpCompressionEnabled": False,
            "StorageCompression": False,
            "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
        }
        config_file = self.folder / "orthanc.json"
        config_file.write_text(json.dumps(config, indent=2))
        self.spawn(
            [binary, str(config_file)], log_file=self.folder / "orthanc.log", cwd=self.folder
        )
        try:
            wait_http(f"{self.url}/system", alive=self.alive, headers=self._own_headers())
        except Exception:
            self.stop()
            raise
        return self

    def upload(self, part10: bytes) -> None:
        """Store one DICOM Part 10 object (Orthanc's REST API, POST /instances)."""
        request = urllib.request.Request(
            f"{self.url}/instances",
            data=part10,
            method="POST",
            headers={"Content-Type": "application/dicom", **self._own_headers()},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def upload_all(self, objects: list[bytes]) -> None:
        for part10 in objects:
            self.upload(part10)
