"""Configuration loading (routing.loader): every problem found, each with its field path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from routing.errors import ConfigError
from routing.ids import HomeCommunityId, Oid
from routing.loader import load_config, parse_config
from routing.model import DocumentNamespace, Protocol

GOOD: dict[str, Any] = {
    "self": {"home_community_id": "urn:oid:1.2.3.4", "audit_source_id": "iig-b"},
    "upstreams": {
        "rig-a": {"protocol": "xc-wado", "base_urls": ["https://rig.a.example.org/wado-rs"]},
        "pacs": {
            "protocol": "wado-rs",
            "base_urls": [
                "https://pacs1.b.example.net/dicom-web/",
                "https://pacs2.b.example.net/dicom-web/",
            ],
            "timeouts": {"connect_s": 2, "read_idle_s": 30},
            "limits": {"max_connections": 10, "keepalive_s": 0.5},
        },
    },
    "communities": {"urn:oid:5.6.7.8": "rig-a"},
    "sources": {"oid:1.2.3.4.100": "pacs"},
    "url_policy": {"allowed_origins": ["https://ids.b.example.net"]},
}


def problems_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return [str(p) for p in caught.value.problems]


def test_good_document_builds_canonical_config() -> None:
    config = parse_config(GOOD)
    assert config.identity.home_community_id == HomeCommunityId("1.2.3.4")
    assert config.communities == {HomeCommunityId("5.6.7.8"): "rig-a"}
    assert config.sources == {Oid("1.2.3.4.100"): "pacs"}
    rig = config.upstreams["rig-a"]
    assert rig.protocol is Protocol.XC_WADO
    assert rig.base_urls == ("https://rig.a.example.org/wado-rs/",)  # trailing slash added
    pacs = config.upstreams["pacs"]
    assert len(pacs.base_urls) == 2
    assert pacs.timeouts.read_idle_s == 30.0
    assert config.url_policy.allowed_origins == {"https://ids.b.example.net:443"}


def test_config_is_read_only() -> None:
    config = parse_config(GOOD)
    with pytest.raises(TypeError):
        config.sources[Oid("9.9")] = "pacs"  # type: ignore[index]


def test_issue_acceptance_three_problems_named_together() -> None:
    document = copy.deepcopy(GOOD)
    document["communities"] = {"5.6.07.8": "rig-a"}  # malformed OID
    document["sources"] = {"1.2.3.4.100": "no-such-upstream"}  # unknown upstream name
    document["upstreams"]["pacs"]["base_urls"] = ["pacs.example/dicom-web"]  # not a URL
    problems = problems_of(document)
    assert any(p.startswith("communities.5.6.07.8:") and "leading zeros" in p for p in problems)
    assert any(
        p.startswith("sources.1.2.3.4.100:") and "unknown upstream 'no-such-upstream'" in p
        for p in problems
    )
    assert any(p.startswith("upstreams.pacs.base_urls[0]:") and "absolute" in p for p in problems)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("self"), "self: is required"),
        (lambda d: d["self"].pop("audit_source_id"), "self.audit_source_id: is required"),
        (lambda d: d["self"].update(home_community_id="ACME"), "self.home_community_id: invalid"),
        (lambda d: d.update(upstreams={}), "upstreams: must name at least one upstream"),
        (
            lambda d: d["upstreams"]["pacs"].update(protocol="ftp"),
            "upstreams.pacs.protocol: must be one of",
        ),
        (
            lambda d: d["upstreams"]["pacs"].update(base_url="x"),
            "upstreams.pacs.base_url: unknown field",
        ),
        (
            lambda d: d["upstreams"]["pacs"]["timeouts"].update(read_idle_s=0),
            "read_idle_s: must be greater than 0",
        ),
        (
            lambda d: d["upstreams"]["pacs"]["timeouts"].update(total_s=60),
            "total_s: is not supported",
        ),
        (
            lambda d: d["upstreams"]["pacs"]["limits"].update(max_connections="ten"),
            "must be a whole number",
        ),
        (
            lambda d: d["upstreams"]["pacs"].update(tls={"ca_file": "/nonexistent/ca.pem"}),
            "does not exist",
        ),
        (
            lambda d: d["upstreams"]["pacs"].update(base_urls=["https://user:pw@pacs/"]),
            "credentials",
        ),
        (lambda d: d["upstreams"]["pacs"].update(base_urls=["https://pacs/?x=1"]), "query"),
        (lambda d: d["communities"].update({"1.2.3.4": "rig-a"}), "own community"),
        (lambda d: d["communities"].update({"9.9": "pacs"}), "communities need xc-wado"),
        (lambda d: d["sources"].update({"1.2.3.4.100": "pacs"}), "duplicates 1.2.3.4.100"),
        (lambda d: d.update(sourcez={}), "sourcez: unknown field"),
        (
            lambda d: d["url_policy"].update(allowed_origins=["ftp://x"]),
            "url_policy.allowed_origins[0]",
        ),
        (lambda d: d["upstreams"].update({"bad name": d["upstreams"]["pacs"]}), "name must be"),
    ],
)
def test_each_problem_names_its_path(mutate: Any, expected: str) -> None:
    document = copy.deepcopy(GOOD)
    mutate(document)
    problems = problems_of(document)
    assert any(expected in p for p in problems), problems


def test_files_yaml_and_json(tmp_path: Path) -> None:
    import json

    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "c.json").write_text(json.dumps(GOOD))
    assert (
        load_config(tmp_path / "c.yaml").upstreams.keys()
        == load_config(tmp_path / "c.json").upstreams.keys()
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("self: [unclosed", "cannot be parsed"),
        ("- a\n- b\n", "mapping at the top level"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_files_are_one_clear_problem(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ConfigError, match=expected):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "absent.yaml")


def with_soap_upstreams(**extra: Any) -> dict[str, Any]:
    """GOOD plus a rad-75 responding gateway and a rad-69 source (XCA-I)."""
    document = copy.deepcopy(GOOD)
    document["upstreams"]["rig-x"] = {
        "protocol": "rad-75",
        "base_urls": ["https://rig.x.example.org/xcai/RespondingGateway"],
        **extra,
    }
    document["upstreams"]["ids"] = {
        "protocol": "rad-69",
        "base_urls": ["https://ids.b.example.net/xdsi/ImagingDocumentSource"],
    }
    document["communities"]["9.8.7"] = "rig-x"
    document["sources"]["1.2.3.4.200"] = "ids"
    return document


def test_communities_take_rad75_and_sources_rad69_upstreams() -> None:
    config = parse_config(with_soap_upstreams())
    assert config.communities[HomeCommunityId("9.8.7")] == "rig-x"
    assert config.sources[Oid("1.2.3.4.200")] == "ids"
    assert config.upstreams["rig-x"].protocol is Protocol.RAD_75
    assert config.upstreams["ids"].protocol is Protocol.RAD_69


def test_a_soap_endpoint_is_kept_as_written_and_a_dicomweb_base_ends_in_a_slash() -> None:
    config = parse_config(with_soap_upstreams())
    assert config.upstreams["rig-x"].base_urls == (
        "https://rig.x.example.org/xcai/RespondingGateway",
    )
    assert config.upstreams["rig-a"].base_urls == ("https://rig.a.example.org/wado-rs/",)


@pytest.mark.parametrize(
    ("routes", "target", "expected"),
    [
        ("communities", "ids", "speaks rad-69; communities need xc-wado or rad-75"),
        ("communities", "pacs", "speaks wado-rs; communities need xc-wado or rad-75"),
        ("sources", "rig-x", "speaks rad-75; sources need wado-rs or rad-69"),
        ("sources", "rig-a", "speaks xc-wado; sources need wado-rs or rad-69"),
    ],
)
def test_a_route_to_an_upstream_of_the_wrong_kind_is_a_problem(
    routes: str, target: str, expected: str
) -> None:
    document = with_soap_upstreams()
    document[routes]["1.9.9"] = target
    assert problems_of(document) == [f"{routes}.1.9.9: upstream {target!r} {expected}"]


def test_document_request_namespace_defaults_to_xds_b() -> None:
    config = parse_config(with_soap_upstreams())
    assert config.upstreams["ids"].document_request_namespace is DocumentNamespace.XDSB
    assert DocumentNamespace.XDSB.uri == "urn:ihe:iti:xds-b:2007"
    assert DocumentNamespace.XDSIB.uri == "urn:ihe:rad:xdsi-b:2009"
    ipf = parse_config(with_soap_upstreams(document_request_namespace="xdsi-b"))
    assert ipf.upstreams["rig-x"].document_request_namespace is DocumentNamespace.XDSIB


@pytest.mark.parametrize("upstream", ["pacs", "rig-a"])
def test_document_request_namespace_on_a_dicomweb_upstream_is_a_problem(upstream: str) -> None:
    document = with_soap_upstreams()
    document["upstreams"][upstream]["document_request_namespace"] = "xds-b"
    protocol = document["upstreams"][upstream]["protocol"]
    assert problems_of(document) == [
        f"upstreams.{upstream}.document_request_namespace: applies to rad-69 and rad-75 "
        f"upstreams, not to {protocol}"
    ]
    document["upstreams"][upstream]["document_request_namespace"] = None  # null: the default
    parse_config(document)


def test_document_request_namespace_is_one_of_two() -> None:
    problems = problems_of(with_soap_upstreams(document_request_namespace="xdsi"))
    assert problems == ["upstreams.rig-x.document_request_namespace: must be one of xds-b, xdsi-b"]
