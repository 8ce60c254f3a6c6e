"""Fixtures of the audit tests: a real Audit Record Repository (rsyslogd, mutual TLS, see
:mod:`tests.functional.audit.rsyslogpeer`) and its certificates."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.audit.rsyslogpeer import Pki, Rsyslog, free_port, make_pki

__all__ = ["Pki", "Rsyslog", "free_port", "pki", "rsyslog"]


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def rsyslog(tmp_path: Path, pki: Pki) -> Iterator[Rsyslog]:
    server = Rsyslog(tmp_path / "arr", pki)
    server.start()
    yield server
    server.stop()
