"""Security configuration: strict defaults, and every problem named by its field path."""

from __future__ import annotations

import base64
import copy
import dataclasses
import ipaddress
import pickle
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


# --- per-upstream credentials (issue 16 item 5) ----------------------------------------------

SECRET = "s3cr3t-Pa55:word"


def with_auth(auth: Any, **upstream: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    document["upstreams"]["pacs"].update({"auth": auth, **upstream})
    return document


def test_basic_credentials_from_a_file_are_read_at_load_time(tmp_path: Path) -> None:
    secret_file = tmp_path / "pacs.password"
    secret_file.write_text(SECRET + "\n")  # the newline editors add is not part of it
    auth = {"type": "basic", "username": "gateway", "password_file": str(secret_file)}
    credential = parse_config(with_auth(auth)).upstreams["pacs"].auth
    assert credential is not None
    token = base64.b64encode(f"gateway:{SECRET}".encode()).decode()
    assert credential.authorization() == f"Basic {token}"
    secret_file.write_text("changed")  # read once: a change needs a reload (SIGHUP)
    assert credential.authorization() == f"Basic {token}"


def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACS_USER", "gw")
    monkeypatch.setenv("PACS_PASSWORD", SECRET)
    monkeypatch.setenv("PACS_TOKEN", "abc.DEF-123_~+/==")
    basic = {"type": "basic", "username_env": "PACS_USER", "password_env": "PACS_PASSWORD"}
    credential = parse_config(with_auth(basic)).upstreams["pacs"].auth
    assert credential is not None
    assert base64.b64decode(credential.authorization().split()[1]) == f"gw:{SECRET}".encode()
    bearer = parse_config(with_auth({"type": "bearer", "token_env": "PACS_TOKEN"}))
    assert bearer.upstreams["pacs"].auth is not None
    assert bearer.upstreams["pacs"].auth.authorization() == "Bearer abc.DEF-123_~+/=="


def test_a_secret_is_never_shown(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text(SECRET.replace(":", ""))
    config = parse_config(with_auth({"type": "bearer", "token_file": str(secret_file)}))
    upstream = config.upstreams["pacs"]
    assert upstream.auth is not None
    shown = [repr(upstream), str(upstream), repr(upstream.auth), str(upstream.auth.secret)]
    shown += [f"{upstream.auth.secret}", repr(config.upstreams)]
    for text in shown:
        assert SECRET.replace(":", "") not in text
    assert "redacted" in repr(upstream.auth.secret)
    assert str(secret_file) in repr(upstream.auth)  # where it came from is no secret


def test_inline_secrets_and_other_mistakes_are_refused_by_field_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    monkeypatch.setenv("EMPTY_VAR", "")
    monkeypatch.setenv("WITH_NEWLINE", "abc\r\nX-Injected: 1")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cases = {
        "inline-password": (
            {"type": "basic", "username": "u", "password": SECRET},
            "upstreams.pacs.auth.password: is refused: a secret is never written in the "
            "configuration; use password_file or password_env",
        ),
        "inline-token": (
            {"type": "bearer", "token": SECRET},
            "upstreams.pacs.auth.token: is refused",
        ),
        "no-type": (
            {"username": "u", "password_env": "X"},
            "upstreams.pacs.auth.type: is required",
        ),
        "bad-type": ({"type": "digest"}, "upstreams.pacs.auth.type: must be one of basic, bearer"),
        "no-password": ({"type": "basic", "username": "u"}, "one of password_file or password_env"),
        "both": (
            {"type": "basic", "username": "u", "password_env": "A", "password_file": "/x"},
            "upstreams.pacs.auth: password_file and password_env exclude each other",
        ),
        "no-username": ({"type": "basic", "password_env": "EMPTY_VAR"}, "one of username or"),
        "colon": (
            {"type": "basic", "username": "a:b", "password_file": str(empty)},
            "upstreams.pacs.auth.username: must not contain ':'",
        ),
        "missing-file": (
            {"type": "bearer", "token_file": str(tmp_path / "nope")},
            "upstreams.pacs.auth.token_file: cannot be read",
        ),
        "empty-file": (
            {"type": "bearer", "token_file": str(empty)},
            "upstreams.pacs.auth.token_file: is empty",
        ),
        "unset-env": (
            {"type": "bearer", "token_env": "NOT_SET_ANYWHERE"},
            "upstreams.pacs.auth.token_env: environment variable NOT_SET_ANYWHERE is not set",
        ),
        "empty-env": (
            {"type": "bearer", "token_env": "EMPTY_VAR"},
            "upstreams.pacs.auth.token_env: environment variable EMPTY_VAR is empty",
        ),
        "header-injection": (
            {"type": "basic", "username": "u", "password_env": "WITH_NEWLINE"},
            "upstreams.pacs.auth.password_env: contains a line break or control character",
        ),
        "bad-token": (
            {"type": "bearer", "token_env": "WITH_NEWLINE"},
            "upstreams.pacs.auth.token_env: contains a line break or control character",
        ),
        "wrong-kind": (
            {"type": "bearer", "token_env": "X", "password_env": "Y"},
            "upstreams.pacs.auth.password_env: only for type basic",
        ),
        "not-a-mapping": ("basic", "upstreams.pacs.auth: must be a mapping"),
    }
    for name, (auth, expected) in cases.items():
        text = problems(with_auth(auth))
        assert expected in text, (name, text)
        assert SECRET not in text and "Injected" not in text, name


def test_forward_authorization_and_a_configured_credential_exclude_each_other() -> None:
    text = problems(with_auth({"type": "bearer", "token_env": "PATH"}, forward_authorization=True))
    assert "upstreams.pacs.forward_authorization: cannot be true together with auth" in text


def test_a_secret_survives_copies_but_not_pickling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACS_TOKEN", "Zq9wX2")
    upstream = parse_config(with_auth({"type": "bearer", "token_env": "PACS_TOKEN"})).upstreams[
        "pacs"
    ]
    assert copy.deepcopy(upstream) == upstream
    assert "Zq9wX2" not in repr(dataclasses.asdict(upstream))
    with pytest.raises(TypeError):
        pickle.dumps(upstream)
