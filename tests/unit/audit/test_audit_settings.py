"""The ``audit`` configuration section."""

from __future__ import annotations

import pytest

from gateway.audit.settings import TransportKind, parse_audit_settings
from routing.errors import ConfigError


def test_defaults_use_a_local_file() -> None:
    settings = parse_audit_settings({}, source="t.yaml")
    assert settings.transport is TransportKind.FILE
    assert settings.file.path == "audit/audit.log"
    assert settings.tls is None
    assert settings.udp is None
    assert settings.journal.max_bytes == 256 * 1024 * 1024


def test_tls_section() -> None:
    settings = parse_audit_settings(
        {
            "audit": {
                "transport": "tls",
                "tls": {
                    "host": "arr.example.org",
                    "ca_file": "ca.pem",
                    "cert_file": "c.pem",
                    "key_file": "k.pem",
                    "settle_s": 0,
                },
                "journal": {
                    "directory": "/var/lib/j",
                    "max_bytes": 1048576,
                    "fsync_interval_s": 0.05,
                },
                "syslog": {"app_name": "gw", "hostname": "gw1"},
                "retry": {"initial_s": 0.1, "max_s": 5},
                "stop_timeout_s": 2,
            }
        },
        source="t.yaml",
    )
    assert settings.tls is not None
    assert (settings.tls.host, settings.tls.port, settings.tls.settle_s) == (
        "arr.example.org",
        6514,
        0.0,
    )
    assert settings.journal.directory == "/var/lib/j"
    assert settings.retry.max_s == 5.0
    assert settings.stop_timeout_s == 2.0


def test_udp_section() -> None:
    settings = parse_audit_settings(
        {"audit": {"transport": "udp", "udp": {"host": "arr", "port": 5514}}}, source="t"
    )
    assert settings.udp is not None
    assert (settings.udp.host, settings.udp.port) == ("arr", 5514)


def test_every_problem_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings(
            {
                "audit": {
                    "transport": "tls",
                    "tls": {"host": "arr", "port": 70000, "extra": 1},
                    "journal": {"max_bytes": 10, "fsync_interval_s": -1},
                    "retry": {"initial_s": 10, "max_s": 1},
                    "colour": "blue",
                }
            },
            source="gw.yaml",
        )
    paths = {problem.path for problem in caught.value.problems}
    assert paths == {
        "audit.tls.port",
        "audit.tls.ca_file",
        "audit.tls.cert_file",
        "audit.tls.key_file",
        "audit.tls.extra",
        "audit.journal.max_bytes",
        "audit.journal.fsync_interval_s",
        "audit.retry.max_s",
        "audit.colour",
    }
    assert caught.value.source == "gw.yaml"


def test_unknown_transport() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings({"audit": {"transport": "carrier-pigeon"}}, source="t")
    assert [p.path for p in caught.value.problems] == ["audit.transport"]


def test_section_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings({"audit": ["tls"]}, source="t")
    assert [p.path for p in caught.value.problems] == ["audit"]
