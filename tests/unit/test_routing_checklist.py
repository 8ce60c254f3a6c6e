"""Routing outcomes the conformance checklist names that no other test pins down alone."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing.errors import UnknownCommunity
from routing.loader import parse_config
from routing.registry import Registry, RouteKind
from tests.unit.test_registry import DOCUMENT, STUDY, request


def _registry(**changes: object) -> Registry:
    document = copy.deepcopy(DOCUMENT)
    document.update(changes)
    return Registry(parse_config(document))


@pytest.mark.checklist(6)
@pytest.mark.parametrize("base", ["https://ids.example.org/pacs/wado-rs", "https://ids.example.org/pacs/wado-rs/"])
def test_source_urls_are_base_plus_studies_with_or_without_a_trailing_slash(base: str) -> None:
    upstreams = copy.deepcopy(DOCUMENT["upstreams"])
    upstreams["pacs"]["base_urls"] = [base]
    route = _registry(upstreams=upstreams).resolve(request("5.6.7.8", f"studies/{STUDY}/series/1.2.3"))
    assert [url for _, url in route.urls()] == [
        f"https://ids.example.org/pacs/wado-rs/studies/{STUDY}/series/1.2.3"
    ]


@pytest.mark.checklist(10)
@given(
    host=st.from_regex(r"[a-z]{1,12}\.example\.(org|net)", fullmatch=True),
    spelling=st.sampled_from(["retrieveurl", "RetrieveURL", "RETRIEVEURL"]),
)
def test_the_responding_gateway_comes_from_configuration_never_from_the_request(
    host: str, spelling: str
) -> None:
    route = _registry().resolve(request("9.9.9", query=f"{spelling}=https://{host}/wado/"))
    assert route.kind is RouteKind.RELAY
    assert [base for base, _ in route.urls()] == ["https://rig.c.example.org/xc/"]


@pytest.mark.checklist(12, 13)
def test_a_community_that_is_neither_ours_nor_configured_is_refused() -> None:
    with pytest.raises(UnknownCommunity) as caught:
        _registry(communities={}).resolve(request("9.9.9"))
    assert "9.9.9" in str(caught.value)
    # Our own community, spelled with its urn:oid: prefix, is still ours.
    own = _registry(communities={}).resolve(request("urn:oid:5.6.7.8"))
    assert own.kind is RouteKind.SOURCE
