"""Security configuration: strict defaults, and every problem named by its field path."""

from __future__ import annotations

import copy
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from gateway.settings import parse_server_settings
from routing.errors import ConfigError
from routing.loader import parse_config
from routing.model import AddressPolicy, RedirectPolicy

BASE: dict[str, Any] = {
    "self": {"home_community_id": "1.2.3.4", "audit_source_id": "rig"},
    "upstreams": {"pacs": {"protocol": "wado-rs", "base_urls": ["https://pacs.example.org/"]}},
    "sources": {"1.2.3.4.100": "pacs"},
}


def problems(document: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return "\n".join(str(p) for p in caught.value.problems)


def test_defaults_are_strict() -> None:
    config = parse_config(BASE)
    pacs = config.upstreams["pacs"]
    assert config.address_policy == AddressPolicy()
    assert not (config.address_policy.allow_loopback or config.address_policy.allow_private)
    assert pacs.address_policy == AddressPolicy()
    assert pacs.redirects == RedirectPolicy(max_hops=2, allow_http=False)
    assert pacs.forward_authorization is False
    assert config.url_policy.allowed_origins == frozenset()


def test_upstream_policy_replaces_the_top_level_one() -> None:
    document = copy.deepcopy(BASE)
    document["address_policy"] = {"allow_private": True, "allowed_networks": ["10.1.0.0/16"]}
    document["upstreams"]["local"] = {
        "protocol": "wado-rs",
        "base_urls": ["http://pacs.local/"],
        "address_policy": {"allow_loopback": True},
        "redirects": {
            "max_hops": 1,
            "allow_http": True,
            "allowed_origins": ["https://cdn.example"],
        },
        "forward_authorization": True,
    }
    config = parse_config(document)
    assert config.upstreams["pacs"].address_policy.allow_private is True
    assert config.upstreams["pacs"].address_policy.allowed_networks == (
        ipaddress.ip_network("10.1.0.0/16"),
    )
    local = config.upstreams["local"]
    assert local.address_policy == AddressPolicy(allow_loopback=True)
    assert local.redirects.allowed_origins == {"https://cdn.example:443"}
    assert local.forward_authorization is True


def test_every_problem_has_its_field_path(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    document = copy.deepcopy(BASE)
    document["address_policy"] = {"allow_loopback": "yes", "allowed_networks": ["10.0.0.1/8"]}
    document["upstreams"]["pacs"].update(
        {
            "redirects": {"max_hops": 99, "allow_http": 1, "allowed_origins": ["ftp://x"], "x": 1},
            "forward_authorization": "true",
            "address_policy": {"allowed_networks": ["nonsense"]},
            "tls": {"ca_file": str(broken)},
        }
    )
    text = problems(document)
    for expected in (
        "address_policy.allow_loopback: must be true or false",
        "address_policy.allowed_networks[0]: '10.0.0.1/8' is not a CIDR network",
        "upstreams.pacs.redirects.max_hops: must be at most 10",
        "upstreams.pacs.redirects.allow_http: must be true or false",
        "upstreams.pacs.redirects.allowed_origins[0]: 'ftp://x'",
        "upstreams.pacs.redirects.x: unknown field",
        "upstreams.pacs.forward_authorization: must be true or false",
        "upstreams.pacs.address_policy.allowed_networks[0]: 'nonsense'",
        "upstreams.pacs.tls.ca_file: is not a usable PEM CA bundle",
    ):
        assert expected in text, text


def test_the_readme_worked_example_is_a_valid_configuration(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## URL trust and transport security", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    ca = trustme.CA()
    leaf = ca.issue_cert("gateway-a.example.org")
    files = {"crt": tmp_path / "leaf.crt", "key": tmp_path / "leaf.key", "pem": tmp_path / "ca.pem"}
    leaf.cert_chain_pems[0].write_to_path(str(files["crt"]))
    leaf.private_key_pem.write_to_path(str(files["key"]))
    ca.cert_pem.write_to_path(str(files["pem"]))
    text = re.sub(
        r"/etc/mado-gateway/tls/[\w.-]+\.(crt|key|pem)",
        lambda m: str(files[m.group(1)]),
        block.group(1),
    )
    document = yaml.safe_load(text)
    document["self"] = {"home_community_id": "1.2.3", "audit_source_id": "rig-a"}
    document["sources"] = {"1.2.3.4": "pacs-a"}
    config = parse_config(document)
    settings = parse_server_settings(document)
    assert config.upstreams["pacs-a"].redirects.max_hops == 1
    assert config.address_policy == AddressPolicy()
    assert settings.tls is not None and len(settings.tls.allowed_client_subjects) == 1


def test_base_urls_pass_the_same_url_checks_as_every_outbound_url() -> None:
    document = copy.deepcopy(BASE)
    document["upstreams"]["pacs"]["base_urls"] = [
        "http://2130706433/dicom-web/",
        "https://pacs.example.org/a/%2e%2e/",
    ]
    text = problems(document)
    assert "upstreams.pacs.base_urls[0]: 'http://2130706433/dicom-web/' is refused" in text
    assert "upstreams.pacs.base_urls[1]" in text and "dot segment" in text
