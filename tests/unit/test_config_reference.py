"""One declaration per configuration field drives the loader, ``check-config``, the JSON Schema
(``mado-gateway config-schema``) and ``docs/configuration.md`` (issue 8, item 5)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from gateway.cli import main
from peers.gateway import gateway_config

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "configuration.md"


def cli_output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["config-schema", *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["config-schema"]) == 0
    schema = json.loads(out.getvalue())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors_of(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_config_schema_prints_a_draft_2020_12_schema(capsys: pytest.CaptureFixture[str]) -> None:
    schema = json.loads(cli_output(capsys))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert {"self", "upstreams", "communities", "sources", "server", "audit"} <= set(
        schema["properties"]
    )


@pytest.mark.parametrize("example", sorted(REPO.glob("examples/*.yaml")), ids=lambda p: p.name)
def test_the_examples_validate_against_the_schema(
    validator: jsonschema.Draft202012Validator, example: Path
) -> None:
    assert errors_of(validator, yaml.safe_load(example.read_text())) == []


def test_the_readme_worked_example_validates_against_the_schema(
    validator: jsonschema.Draft202012Validator,
) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## URL trust and transport security", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    document = yaml.safe_load(block.group(1))
    document["self"] = {"home_community_id": "1.2.3", "audit_source_id": "rig-a"}
    document["sources"] = {"1.2.3.4": "pacs-a"}
    assert errors_of(validator, document) == []


def peer_configs() -> list[dict[str, Any]]:
    """What peers/gateway.py writes for the tests, the demo and the benchmark."""
    upstreams = {
        "src": {"protocol": "wado-rs", "base_urls": ["http://127.0.0.1:9/"]},
        "rig": {"protocol": "xc-wado", "base_urls": ["https://127.0.0.1:9443/wado/"]},
    }
    plain = gateway_config(
        home_community_id="5.6.7.8",
        port=8080,
        upstreams=upstreams,
        communities={"1.2.3": "rig"},
        sources={"1.2.3.4": "src"},
    )
    everything = gateway_config(
        home_community_id="urn:oid:5.6.7.8",
        port=8443,
        upstreams=copy.deepcopy(upstreams),
        sources={"oid:1.2.3.4": "src"},
        base_path="/wado-rs",
        url_policy={"allowed_origins": ["http://127.0.0.1:9"], "allow_upstream_origins": True},
        address_policy={"allow_loopback": True, "allowed_networks": ["10.0.0.0/8"]},
        extra={
            "server": {
                "host": "127.0.0.1",
                "port": 8443,
                "log_level": "DEBUG",
                "tls": {
                    "cert_file": "gw.crt",
                    "key_file": "gw.key",
                    "client_ca_file": "ca.pem",
                    "allowed_client_subjects": ["CN=peer,O=B"],
                },
                "cors": {"allowed_origins": ["*"], "max_age_s": 60},
                "rate_limit": {"requests_per_s": 10, "burst": 20, "max_streams": 2},
                "peer_gateways": {"subjects": ["CN=peer,O=B"], "rate_limit": {"burst": 5}},
            },
            "audit": {
                "destinations": [
                    {
                        "name": "arr",
                        "transport": "tls",
                        "tls": {
                            "host": "127.0.0.1",
                            "port": 6514,
                            "ca_file": "ca.pem",
                            "cert_file": "c.pem",
                            "key_file": "k.pem",
                            "settle_s": 0,
                        },
                    },
                    {"name": "local", "transport": "file", "file": {"path": "a.log"}},
                ],
                "journal": {"directory": "j", "fsync_interval_s": 0.05},
                "retry": {"initial_s": 0.1, "max_s": 1},
            },
        },
    )
    everything["upstreams"]["src"].update(
        timeouts={"connect_s": 1, "read_idle_s": 2},
        limits={"max_connections": 4, "keepalive_s": 0.5},
        redirects={"max_hops": 0, "allow_http": True, "allowed_origins": []},
        address_policy={"allow_private": True},
        auth={"type": "bearer", "token_env": "TOKEN"},
        tls={"ca_file": None, "cert_file": None, "key_file": None},
    )
    process_default = copy.deepcopy(plain)  # what GatewayProcess adds to every file
    process_default["audit"] = {"file": {"path": "a/audit.log"}, "journal": {"directory": "j"}}
    return [plain, everything, process_default]


@pytest.mark.parametrize("document", peer_configs(), ids=["plain", "everything", "process"])
def test_the_test_configurations_validate_against_the_schema(
    validator: jsonschema.Draft202012Validator, document: dict[str, Any]
) -> None:
    assert errors_of(validator, document) == []


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["upstreams"]["src"].update(base_url="x"), "upstreams.src"),
        (lambda d: d["upstreams"]["src"].update(protocol="ftp"), "upstreams.src.protocol"),
        (
            lambda d: d["upstreams"]["src"].update(timeouts={"read_idle_s": 0}),
            "upstreams.src.timeouts.read_idle_s",
        ),
        (lambda d: d["server"].update(port=70000), "server.port"),
        (lambda d: d["audit"].update(colour="blue"), "audit"),
        (lambda d: d["sources"].update({"1.02": "src"}), "sources"),
        (lambda d: d.pop("self"), ""),
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(
    validator: jsonschema.Draft202012Validator, mutate: Any, where: str
) -> None:
    document = copy.deepcopy(peer_configs()[0])
    document.setdefault("audit", {})
    mutate(document)
    found = errors_of(validator, document)
    assert any(error.startswith(where) for error in found), found


def test_the_configuration_reference_is_generated_from_the_declarations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    generated = cli_output(capsys, "--format", "markdown")
    assert REFERENCE.read_text(encoding="utf-8") == generated, (
        "docs/configuration.md is stale: regenerate it with `make config-docs` "
        "(mado-gateway config-schema --format markdown > docs/configuration.md)"
    )
    for section in ("`self`", "`upstreams.<name>.timeouts`", "`server.tls`", "`audit.journal`"):
        assert section in generated
