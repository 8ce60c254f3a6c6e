"""The ``audit`` configuration section."""

from __future__ import annotations

import pytest

from gateway.audit.settings import FileSettings, TransportKind, UdpSettings, parse_audit_settings
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


TLS = {"host": "arr.example.org", "ca_file": "ca.pem", "cert_file": "c.pem", "key_file": "k.pem"}


def test_shorthand_is_one_destination_named_after_its_transport() -> None:
    (default,) = parse_audit_settings({}, source="t").destinations
    assert (default.name, default.transport, default.file) == (
        "file",
        TransportKind.FILE,
        FileSettings(),
    )
    settings = parse_audit_settings({"audit": {"transport": "tls", "tls": TLS}}, source="t")
    (only,) = settings.destinations
    assert (only.name, only.transport, only.tls) == ("tls", TransportKind.TLS, settings.tls)


def test_a_list_of_destinations_each_with_its_own_transport() -> None:
    settings = parse_audit_settings(
        {
            "audit": {
                "destinations": [
                    {"name": "arr", "transport": "tls", "tls": {**TLS, "settle_s": 0.1}},
                    {"name": "local", "transport": "file", "file": {"path": "a/audit.log"}},
                    {"name": "siem_2", "transport": "udp", "udp": {"host": "siem", "port": 5514}},
                ],
                "journal": {"directory": "/var/lib/j"},
            }
        },
        source="t",
    )
    arr, local, siem = settings.destinations
    assert (arr.name, arr.transport) == ("arr", TransportKind.TLS)
    assert arr.tls is not None
    assert (arr.tls.host, arr.tls.settle_s) == ("arr.example.org", 0.1)
    assert local.file == FileSettings(path="a/audit.log")
    assert local.tls is None
    assert siem.udp == UdpSettings(host="siem", port=5514)
    # The single-destination view callers had before stays: the first destination.
    assert settings.transport is TransportKind.TLS
    assert settings.tls == arr.tls
    assert settings.journal.directory == "/var/lib/j"


def test_destination_problems_are_named_by_their_path() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings(
            {
                "audit": {
                    "destinations": [
                        {"name": "arr", "transport": "tls", "tls": {"host": "x"}},
                        {"name": "arr", "transport": "file"},
                        {"name": "Bad Name!", "transport": "file", "file": {"path": "b.log"}},
                        {"transport": "udp", "udp": {"host": "h"}, "colour": 1},
                        {"name": "pigeon", "transport": "carrier-pigeon"},
                        {"name": "twin", "transport": "file"},
                        "not a mapping",
                    ]
                }
            },
            source="gw.yaml",
        )
    paths = sorted(problem.path for problem in caught.value.problems)
    assert paths == sorted(
        [
            "audit.destinations[0].tls.ca_file",
            "audit.destinations[0].tls.cert_file",
            "audit.destinations[0].tls.key_file",
            "audit.destinations[1].name",  # used twice
            "audit.destinations[2].name",  # not a usable file and label name
            "audit.destinations[3].name",  # missing
            "audit.destinations[3].colour",
            "audit.destinations[4].transport",
            "audit.destinations[5].file.path",  # the same file as destinations[1]
            "audit.destinations[6]",
        ]
    )


@pytest.mark.parametrize(
    "section",
    [
        {"destinations": [{"name": "a", "transport": "file"}], "transport": "tls", "tls": TLS},
        {"destinations": [{"name": "a", "transport": "file"}], "file": {"path": "x.log"}},
    ],
)
def test_destinations_and_the_shorthand_do_not_mix(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings({"audit": section}, source="t")
    assert [p.path for p in caught.value.problems] == ["audit.destinations"]
    assert "either" in caught.value.problems[0].reason


@pytest.mark.parametrize("value", [[], {"a": 1}, "arr"])
def test_destinations_must_be_a_non_empty_list(value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings({"audit": {"destinations": value}}, source="t")
    assert [p.path for p in caught.value.problems] == ["audit.destinations"]


def fhir_destination(**fhir: object) -> dict[str, object]:
    return {"audit": {"destinations": [{"name": "balp", "transport": "fhir", "fhir": fhir}]}}


def test_the_fhir_feed_goes_over_tls() -> None:
    settings = parse_audit_settings(
        fhir_destination(base_url="https://fhir.example.org/R4/", ca_file="ca.pem"), source="t"
    )
    fhir = settings.destinations[0].fhir
    assert fhir is not None
    assert (fhir.base_url, fhir.ca_file, fhir.allow_http) == (
        "https://fhir.example.org/R4/",
        "ca.pem",
        False,
    )


@pytest.mark.parametrize("base_url", ["http://fhir.example.org/R4/", "HTTP://fhir/"])
def test_an_http_fhir_server_is_refused_unless_allowed(base_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings(fhir_destination(base_url=base_url), source="t")
    [problem] = caught.value.problems
    assert problem.path == "audit.destinations[0].fhir.base_url"
    assert "https://" in problem.reason and "allow_http" in problem.reason
    allowed = parse_audit_settings(fhir_destination(base_url=base_url, allow_http=True), source="t")
    fhir = allowed.destinations[0].fhir
    assert fhir is not None and fhir.allow_http


@pytest.mark.parametrize("base_url", ["ftp://fhir/", "fhir.example.org/R4/", ""])
def test_a_fhir_base_url_is_an_https_url(base_url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings(fhir_destination(base_url=base_url, allow_http=True), source="t")
    assert [p.path for p in caught.value.problems] == ["audit.destinations[0].fhir.base_url"]
