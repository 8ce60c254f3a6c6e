"""The declared configuration reader: nothing a document says is dropped without a problem."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.audit.settings import parse_audit_settings
from routing.errors import ConfigError
from routing.loader import parse_config

BASE: dict[str, Any] = {
    "self": {"home_community_id": "1.2.3.4", "audit_source_id": "rig"},
    "upstreams": {"pacs": {"protocol": "wado-rs", "base_urls": ["https://pacs.example.org/"]}},
    "sources": {"1.2.3.4.100": "pacs"},
}


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return [str(p) for p in caught.value.problems]


def test_an_upstream_without_base_urls_is_a_problem_not_a_silently_missing_route() -> None:
    document = copy.deepcopy(BASE)
    document["upstreams"]["pacs"]["base_urls"] = []
    assert problems(document) == ["upstreams.pacs.base_urls: must list at least one URL"]


@pytest.mark.parametrize("number", [10**400, -(10**400), float("inf"), float("nan")])
def test_a_number_past_any_float_is_a_problem_not_a_crash(number: float) -> None:
    document = copy.deepcopy(BASE)
    document["upstreams"]["pacs"]["timeouts"] = {"connect_s": number}
    found = problems(document)
    assert found == ["upstreams.pacs.timeouts.connect_s: must be a finite number"], found


def test_an_empty_audit_destination_is_a_problem_not_a_missing_destination() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_audit_settings({"audit": {"destinations": [None]}}, source="t")
    assert [str(p) for p in caught.value.problems] == [
        "audit.destinations[0].name: is required",
        "audit.destinations[0].transport: is required",
    ]


def test_an_upstream_is_named_by_its_key_as_read() -> None:
    document = copy.deepcopy(BASE)
    document["upstreams"] = {" pacs ": document["upstreams"]["pacs"]}
    config = parse_config(document)
    assert list(config.upstreams) == ["pacs"]
    assert config.upstreams["pacs"].name == "pacs"
