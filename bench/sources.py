"""The benchmark's sources: Orthanc holding a study of about 1 GB, and a static source
answering 1 GiB from memory.

The Orthanc study is made once per benchmark run: one CT instance of 512 x 512 16-bit pixels
(:func:`peers.studies.make_study`), its SOP Instance UID swapped for a numbered one of the
same length per copy, stored through Orthanc's REST API by a few threads. Orthanc itself is
the Debian build the tests use (:func:`peers.orthanc.find_orthanc`). Its own HTTPS is not
usable (Debian's Orthanc 1.10 dies on the first TLS handshake: civetweb calls a null
function), so the HTTPS source is Orthanc behind nginx (:mod:`bench.nginx`, ``origin``).

The same Orthanc also holds a study of one instance of about 2.6 kB: what a viewer asks for
one at a time.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import trustme

from peers.gateway import REPO
from peers.net import free_port, wait_http
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study

__all__ = [
    "Certificates",
    "Instance",
    "StoredStudy",
    "certificates",
    "start_server",
    "start_static",
    "store_study",
]

SMALL_BYTES = 2600


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """Where one instance is, in WADO-RS terms."""

    study: str
    series: str
    sop: str
    size: int

    @property
    def path(self) -> str:
        return f"studies/{self.study}/series/{self.series}/instances/{self.sop}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredStudy:
    """What :func:`store_study` put into Orthanc."""

    study: str
    instances: int
    bytes: int
    large: Instance  # one of the study's 0.5 MiB instances
    small: Instance  # the one instance of the small study

    @property
    def path(self) -> str:
        return f"studies/{self.study}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Certificates:
    """A CA and one server certificate for ``localhost`` and ``127.0.0.1`` (files)."""

    ca: Path
    cert: Path
    key: Path


def certificates(folder: Path) -> Certificates:
    """Certificates made for this run with trustme, as the tests make theirs."""
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    files = Certificates(
        ca=folder / "ca.pem",
        cert=folder / "server.crt",
        key=folder / "server.key",
    )
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


def _numbered(uid: bytes, prefix: bytes, n: int) -> bytes:
    """A UID as long as ``uid``: ``prefix`` then ``n`` zero-padded (a same-length swap)."""
    return prefix + b"%0*d" % (len(uid) - len(prefix), n)


def store_study(orthanc: OrthancServer, instances: int) -> StoredStudy:
    """Store a study of ``instances`` CT instances of 0.5 MiB, and a one-instance study of
    about 2.6 kB, into ``orthanc`` (HTTP)."""
    big = make_study(seed="bench-big", series_count=1, instances_per_series=1, rows=512, columns=512)
    one = big.instances[0]
    sop = one.sop_instance_uid.encode()
    copies = (one.part10.replace(sop, _numbered(sop, b"2.25.9", n)) for n in range(instances))
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda body: _post(orthanc.port, body), copies))
    small_study = _small_study()
    small = small_study.instances[0]
    _post(orthanc.port, small.part10)
    first = _numbered(sop, b"2.25.9", 0).decode()
    return StoredStudy(
        study=big.study_uid,
        instances=instances,
        bytes=len(one.part10) * instances,
        large=Instance(study=big.study_uid, series=one.series_uid, sop=first, size=len(one.part10)),
        small=Instance(
            study=small_study.study_uid,
            series=small.series_uid,
            sop=small.sop_instance_uid,
            size=len(small.part10),
        ),
    )


def _small_study() -> SyntheticStudy:
    overhead = len(
        make_study(seed="bench-small", series_count=1, instances_per_series=1, rows=1, columns=1)
        .instances[0]
        .part10
    )
    columns = max(1, (SMALL_BYTES - overhead) // 2 + 1)
    return make_study(
        seed="bench-small", series_count=1, instances_per_series=1, rows=1, columns=columns
    )


def _post(port: int, body: bytes) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            "POST", "/instances", body=body, headers={"Content-Type": "application/dicom"}
        )
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"Orthanc refused an instance: {answer.status}")
    finally:
        connection.close()


def start_static(parts: int, *, side: int = 512) -> tuple[subprocess.Popen[bytes], str]:
    """The static source (:mod:`peers.faults` in its own process): ``parts`` CT instances of
    ``side`` x ``side`` pixels (512: 0.5 MiB) in one multipart answer with a Content-Length,
    parts without one; returns the process and the base URL whose ``big/studies/…`` answers
    it."""
    port = free_port()
    command = [sys.executable, "-m", "peers.faults", "--port", str(port), "--side", str(side)]
    return start_server([*command, "--parts", str(parts)], port, "big/studies/1.2")


def start_server(
    command: list[str], port: int, ready_path: str, *, timeout_s: float = 20.0
) -> tuple[subprocess.Popen[bytes], str]:
    """``command``, a server on 127.0.0.1:``port``, in its own process once ``ready_path``
    answers 200: (the process, its base URL ending in ``/``). Raises as
    :func:`peers.net.wait_http` does (the process stopped first, not left behind)."""
    process = subprocess.Popen(command, cwd=REPO)
    base = f"http://127.0.0.1:{port}/"
    try:
        wait_http(base + ready_path, timeout_s=timeout_s, alive=lambda: process.poll() is None)
    except BaseException:
        process.terminate()
        process.wait()
        raise
    return process, base
