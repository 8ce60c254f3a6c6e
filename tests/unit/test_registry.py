"""Routing decisions (routing.registry) for both gateway roles and both addressing modes."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from routing.errors import RetrieveUrlRefused, UnknownCommunity, UnknownSource
from routing.ids import HomeCommunityId, Oid
from routing.loader import parse_config
from routing.rad160 import parse_rad160
from routing.registry import RETRIEVE_URL_UPSTREAM, Registry, RouteKind, normalise_retrieve_url

STUDY = "1.2.840.113619.2.207.28521.42888.1640475282.450"

DOCUMENT: dict[str, Any] = {
    "self": {"home_community_id": "5.6.7.8", "audit_source_id": "rig-a"},
    "upstreams": {
        "rig-c": {"protocol": "xc-wado", "base_urls": ["https://rig.c.example.org/xc/"]},
        "pacs": {
            "protocol": "wado-rs",
            "base_urls": [
                "https://document-source.example.org/pacs/wado-rs/",
                "https://backup.example.org/wado/",
            ],
        },
    },
    "communities": {"9.9.9": "rig-c"},
    "sources": {"1.2.840.9.10.11.12": "pacs"},
    "url_policy": {"allowed_origins": ["https://hostname"], "allow_upstream_origins": True},
}


def registry(**policy: Any) -> Registry:
    document = copy.deepcopy(DOCUMENT)
    if policy:
        document["url_policy"] = policy
    return Registry(parse_config(document))


def request(hcid: str, tail: str = f"study/{STUDY}", query: str = "") -> Any:
    return parse_rad160(
        f"homeCommunityId/{hcid}/RetrieveLocationUID/1.2.840.9.10.11.12/{tail}", query
    )


def test_other_community_is_relayed_verbatim() -> None:
    route = registry().resolve(request("urn:oid:9.9.9", f"study/{STUDY}/", "retrieveurl=x/y"))
    assert route.kind is RouteKind.RELAY
    assert route.upstream.name == "rig-c"
    assert list(route.urls()) == [
        (
            "https://rig.c.example.org/xc/",
            "https://rig.c.example.org/xc/homeCommunityId/urn:oid:9.9.9/RetrieveLocationUID/"
            f"1.2.840.9.10.11.12/study/{STUDY}/?retrieveurl=x/y",
        )
    ]


@pytest.mark.checklist(17)
def test_own_community_goes_to_the_source_with_studies_and_failover_order() -> None:
    route = registry().resolve(request("5.6.7.8"))
    assert route.kind is RouteKind.SOURCE
    assert [url for _, url in route.urls()] == [
        f"https://document-source.example.org/pacs/wado-rs/studies/{STUDY}",  # MADO Figure XA-2 [3]
        f"https://backup.example.org/wado/studies/{STUDY}",
    ]


@pytest.mark.checklist(5)
def test_retrieve_url_mode_figure_xa4() -> None:
    route = registry().resolve(request("5.6.7.8", query="retrieveurl=hostname/dicom-web-rs/"))
    assert route.kind is RouteKind.RETRIEVE_URL
    assert route.upstream.name == RETRIEVE_URL_UPSTREAM
    assert [url for _, url in route.urls()] == [f"https://hostname/dicom-web-rs/studies/{STUDY}"]


def test_retrieve_url_on_a_registered_upstream_origin_uses_that_upstream() -> None:
    route = registry().resolve(
        request("5.6.7.8", query="retrieveurl=https://backup.example.org/other/")
    )
    assert route.upstream.name == "pacs"
    assert route.base_urls == ("https://backup.example.org/other/",)


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("https://evil.example.com/wado/", "allow-list"),
        ("http://hostname/dicom-web-rs/", "allow-list"),  # scheme is part of the origin
        ("https://hostname:8443/x/", "allow-list"),
        ("https://trusted@hostname/x/", "credentials"),
        ("ftp://hostname/x/", "scheme"),
        ("https://hostname/x/?a=b", "query"),
        ("https://:80/", "absolute"),
    ],
)
@pytest.mark.checklist(15)
def test_retrieve_urls_outside_the_policy_are_refused(value: str, rule: str) -> None:
    with pytest.raises(RetrieveUrlRefused) as caught:
        registry().resolve(request("5.6.7.8", query=f"retrieveurl={value}"))
    assert rule in caught.value.rule


def test_default_policy_refuses_every_retrieve_url() -> None:
    strict = Registry(parse_config({k: v for k, v in DOCUMENT.items() if k != "url_policy"}))
    with pytest.raises(RetrieveUrlRefused):
        strict.resolve(
            request(
                "5.6.7.8", query="retrieveurl=https://document-source.example.org/pacs/wado-rs/"
            )
        )


def test_unknown_community_and_source_name_the_identifier() -> None:
    with pytest.raises(UnknownCommunity, match=r"1\.1\.1"):
        registry().resolve(request("1.1.1"))
    unknown = parse_rad160(f"homeCommunityId/5.6.7.8/RetrieveLocationUID/7.7.7/studies/{STUDY}")
    with pytest.raises(UnknownSource, match=r"7\.7\.7"):
        registry().resolve(unknown)


def test_normalise_retrieve_url() -> None:
    assert normalise_retrieve_url("hostname/dicom-web-rs") == "https://hostname/dicom-web-rs/"
    assert normalise_retrieve_url("HTTPS://Host:8443/a/") == "https://Host:8443/a/"


XCAI: dict[str, Any] = {
    **copy.deepcopy(DOCUMENT),
    "upstreams": {
        **copy.deepcopy(DOCUMENT["upstreams"]),
        "rig-d": {"protocol": "rad-75", "base_urls": ["https://rig.d.example.org/xcai/RG"]},
        "ids": {"protocol": "rad-69", "base_urls": ["https://ids.example.org/xdsi/IDS"]},
    },
    "communities": {"9.9.9": "rig-c", "urn:oid:8.8.8": "rig-d"},
    "sources": {"1.2.840.9.10.11.12": "pacs", "1.2.840.9.10.11.13": "ids"},
}


def xcai_registry() -> Registry:
    return Registry(parse_config(copy.deepcopy(XCAI)))


def test_xcai_routes_a_community_and_a_repository_to_their_upstreams() -> None:
    routes = xcai_registry()
    assert routes.community(HomeCommunityId("8.8.8")).name == "rig-d"
    assert routes.community(HomeCommunityId("urn:oid:9.9.9")).name == "rig-c"
    assert routes.repository(Oid("1.2.840.9.10.11.13")).name == "ids"
    assert routes.repository(Oid("oid:1.2.840.9.10.11.12")).name == "pacs"


def test_xcai_unknown_community_and_repository_name_the_identifier() -> None:
    routes = xcai_registry()
    with pytest.raises(UnknownCommunity, match=r"7\.7\.7"):
        routes.community(HomeCommunityId("7.7.7"))
    with pytest.raises(UnknownCommunity):  # answered locally by the caller, never configured
        routes.community(HomeCommunityId("5.6.7.8"))
    with pytest.raises(UnknownSource, match=r"7\.7\.7") as caught:
        routes.repository(Oid("7.7.7"))
    assert caught.value.retrieve_location_uid == "7.7.7"


def test_rad160_resolves_to_soap_upstreams_for_the_handler_to_bridge() -> None:
    routes = xcai_registry()
    relay = routes.resolve(request("8.8.8", f"studies/{STUDY}"))
    assert (relay.kind, relay.upstream.name) == (RouteKind.RELAY, "rig-d")
    assert relay.base_urls == ("https://rig.d.example.org/xcai/RG",)  # an endpoint, as written
    source = routes.resolve(
        parse_rad160(
            f"homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.840.9.10.11.13/studies/{STUDY}"
        )
    )
    assert (source.kind, source.upstream.name) == (RouteKind.SOURCE, "ids")
    assert source.path == f"studies/{STUDY}"


def test_retrieve_url_admission_ignores_soap_upstream_origins() -> None:
    routes = xcai_registry()
    with pytest.raises(RetrieveUrlRefused, match="allow-list"):
        routes.resolve(request("5.6.7.8", query="retrieveurl=https://ids.example.org/xdsi/"))
    admitted = routes.resolve(
        request("5.6.7.8", query="retrieveurl=https://backup.example.org/wado/")
    )
    assert admitted.upstream.name == "pacs"
