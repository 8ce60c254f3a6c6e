"""XCA-I configuration: the ``server.xca`` section (endpoint, bounds, spool), its problems
named by field path, and the shipped XCA-I example accepted by ``check-config``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from gateway.app import route_table
from gateway.cli import main
from gateway.settings import (
    ANY_TRANSFER_SYNTAXES,
    RESERVED_PATHS,
    SPOOL_FOLDER,
    ServerSettings,
    SpoolSettings,
    XcaSettings,
    parse_server_settings,
)
from gateway.sinks.metrics import Metrics
from routing.errors import ConfigError
from routing.ids import HomeCommunityId, Oid
from routing.loader import parse_config
from routing.model import DocumentNamespace, Protocol
from routing.registry import Registry

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "xcai-gateway.yaml"

MiB = 1024 * 1024


def xca(**section: Any) -> XcaSettings:
    return parse_server_settings({"server": {"xca": section}}).xca


def problems(server: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_server_settings({"server": server})
    return [str(p) for p in caught.value.problems]


def test_defaults() -> None:
    settings = parse_server_settings({})
    assert settings.xca == XcaSettings()
    assert settings.xca.path == "/xcai"
    assert (settings.xca.max_envelope_bytes, settings.xca.max_inline_bytes) == (4 * MiB, 64 * MiB)
    assert settings.xca.concurrency == 8
    assert settings.xca.any_transfer_syntaxes == ANY_TRANSFER_SYNTAXES
    assert ANY_TRANSFER_SYNTAXES[0] == "1.2.840.10008.1.2.1"
    assert "1.2.840.10008.1.2.4.50" not in ANY_TRANSFER_SYNTAXES  # nothing lossy
    spool = settings.xca.spool
    assert (spool.directory, spool.max_bytes, spool.max_request_bytes) == (None, 4 << 30, 1 << 30)
    assert spool.path == Path(tempfile.gettempdir()) / SPOOL_FOLDER


def test_every_field_is_read() -> None:
    settings = xca(
        path="/soap/xcai/",
        max_envelope_bytes=65536,
        max_inline_bytes=65536,
        concurrency=2,
        any_transfer_syntaxes="1.2.840.10008.1.2.4.80",
        spool={"directory": "spool", "max_bytes": 10, "max_request_bytes": 10},
    )
    assert settings.path == "/soap/xcai"
    assert settings.max_envelope_bytes == settings.max_inline_bytes == 65536
    assert settings.concurrency == 2
    assert settings.any_transfer_syntaxes == ("1.2.840.10008.1.2.4.80",)
    assert settings.spool == SpoolSettings(directory="spool", max_bytes=10, max_request_bytes=10)
    assert settings.spool.path == Path("spool")


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ({"xca": {"path": "/wado"}}, "server.xca.path: must not be base_path (/wado) or below it"),
        (
            {"base_path": "/dicomweb/", "xca": {"path": "/dicomweb/xcai"}},
            "server.xca.path: must not be base_path (/dicomweb) or below it",
        ),
        ({"xca": {"path": "/metrics"}}, "server.xca.path: /metrics is taken by another route"),
        (
            {"xca": {"path": "/mado/retrieve/"}},
            "server.xca.path: /mado/retrieve is taken by another route",
        ),
        (
            {"xca": {"path": "xcai"}},
            "server.xca.path: must be a path such as /xcai (letters, digits, . _ ~ -)",
        ),
        ({"xca": {"path": "/"}}, "server.xca.path: must be a path such as /xcai"),
        ({"xca": {"concurrency": 0}}, "server.xca.concurrency: must be at least 1"),
        ({"xca": {"concurrency": 257}}, "server.xca.concurrency: must be at most 256"),
        (
            {"xca": {"max_envelope_bytes": 512}},
            "server.xca.max_envelope_bytes: must be at least 1024",
        ),
        (
            {"xca": {"max_envelope_bytes": 2 * MiB, "max_inline_bytes": MiB}},
            "server.xca.max_inline_bytes: must not be less than max_envelope_bytes",
        ),
        (
            {"xca": {"any_transfer_syntaxes": []}},
            "server.xca.any_transfer_syntaxes: must list at least one transfer syntax UID",
        ),
        (
            {"xca": {"any_transfer_syntaxes": ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2"]}},
            "server.xca.any_transfer_syntaxes[1]: 1.2.840.10008.1.2 is not available via DICOMweb",
        ),
        (
            {"xca": {"any_transfer_syntaxes": ["1.2.840.10008.1.2.2"]}},
            "server.xca.any_transfer_syntaxes[0]: 1.2.840.10008.1.2.2 is not available via "
            "DICOMweb",
        ),
        (
            {"xca": {"any_transfer_syntaxes": ["1.2.840.10008.1.2.04.50"]}},
            "server.xca.any_transfer_syntaxes[0]: is not a transfer syntax UID: must be digits "
            "separated by dots, without leading zeros",
        ),
        (
            {"xca": {"any_transfer_syntaxes": ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1"]}},
            "server.xca.any_transfer_syntaxes[1]: repeats 1.2.840.10008.1.2.1",
        ),
        (
            {"xca": {"spool": {"max_bytes": 100, "max_request_bytes": 101}}},
            "server.xca.spool.max_request_bytes: must not be more than max_bytes",
        ),
        (
            {"xca": {"spool": {"max_request_bytes": 5 << 30}}},
            "server.xca.spool.max_request_bytes: must not be more than max_bytes",
        ),
        ({"xca": {"spool": {"max_bytes": 0}}}, "server.xca.spool.max_bytes: must be at least 1"),
        ({"xca": {"timeout_s": 5}}, "server.xca.timeout_s: unknown field"),
    ],
)
def test_each_problem_names_its_path(server: dict[str, Any], expected: str) -> None:
    found = problems(server)
    assert any(p.startswith(expected) for p in found), found


def test_a_spool_directory_that_is_a_file_is_a_problem(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    assert problems({"xca": {"spool": {"directory": str(taken)}}}) == [
        f"server.xca.spool.directory: {str(taken)!r} is not a directory"
    ]
    assert xca(spool={"directory": str(tmp_path / "absent")}).spool.path == tmp_path / "absent"


def test_a_path_beside_base_path_is_not_below_it() -> None:
    assert xca(path="/wado-xcai").path == "/wado-xcai"
    settings = parse_server_settings({"server": {"base_path": "/x/wado", "xca": {"path": "/x"}}})
    assert (settings.base_path, settings.xca.path) == ("/x/wado", "/x")


def test_the_reserved_paths_are_the_route_tables_fixed_paths() -> None:
    settings = ServerSettings()
    table = route_table(settings, Metrics(CollectorRegistry(), version="test"))
    fixed = {route.path for route in table.routes if not route.below}
    assert fixed - {settings.xca.path} == set(RESERVED_PATHS)


def test_the_schema_describes_the_xca_section(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    section = schema["properties"]["server"]["properties"]["xca"]
    assert set(section["properties"]) == {
        "path",
        "max_envelope_bytes",
        "max_inline_bytes",
        "concurrency",
        "any_transfer_syntaxes",
        "spool",
    }
    assert section["properties"]["spool"]["additionalProperties"] is False
    upstream = schema["properties"]["upstreams"]["additionalProperties"]
    namespace = upstream["properties"]["document_request_namespace"]
    assert namespace["default"] == "xds-b"


def test_check_config_accepts_the_xcai_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", str(EXAMPLE)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"{EXAMPLE}: OK")
    assert captured.err == ""


def test_the_xcai_example_routes_both_protocols() -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    config = parse_config(document)
    routes = Registry(config)
    archive = routes.repository(Oid("1.3.6.1.4.1.21367.13.80.1"))
    assert (archive.protocol, archive.document_request_namespace) == (
        Protocol.RAD_69,
        DocumentNamespace.XDSB,
    )
    assert archive.base_urls == (
        "https://ids.community-c.example.org/dcm4chee-arc/xdsi/ImagingDocumentSource",
    )
    assert routes.repository(Oid("1.3.6.1.4.1.21367.13.80.2")).protocol is Protocol.WADO_RS
    community = routes.community(HomeCommunityId("1.3.6.1.4.1.21367.13.70.4"))
    assert community.protocol is Protocol.RAD_75
    assert community.document_request_namespace is DocumentNamespace.XDSIB
    assert len(community.base_urls) == 2
    server = parse_server_settings(document)
    assert server.xca.path == "/xcai"
    assert server.xca.any_transfer_syntaxes[-1] == "1.2.840.10008.1.2.1"
    assert server.xca.spool.max_request_bytes <= server.xca.spool.max_bytes
