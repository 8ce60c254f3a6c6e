"""Fixtures of the transport security tests: certificates made per test (trustme) and a fast
WADO-RS source in its own process, for the tests that run gateway processes."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from peers.gateway import REPO
from peers.net import free_port, wait_http
from tests.security.pki import Pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(folder=tmp_path, server_ca=trustme.CA(), client_ca=trustme.CA())


@pytest.fixture
def source() -> Iterator[str]:
    """A fast WADO-RS source in its own process (peers.faults): 3 CT instances of 64 x 64 pixels."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "peers.faults", "--port", str(port), "--side", "64", "--parts", "3"],
        cwd=REPO,
    )
    try:
        base = f"http://127.0.0.1:{port}/big/"
        deadline = time.monotonic() + 10
        while True:
            try:
                wait_http(base + "studies/1.2", timeout_s=0.5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
        yield base
    finally:
        process.terminate()
        process.wait()
