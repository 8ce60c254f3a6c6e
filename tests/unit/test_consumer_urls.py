"""Planned retrievals -> URLs: which Retrieve Location UID a series is retrieved by (issue 16,
class 2): an OID as is, an opaque identifier through an alias, else the Retrieve URL, else a
clear error naming the series and the identifier."""

from __future__ import annotations

import pytest

from gateway.consumer.urls import NO_LOCATION, Target, urls_for
from mado.errors import ManifestError, UnroutableSeries
from mado.plan import RetrieveRequest
from routing.ids import HomeCommunityId, Oid, Uid
from routing.rad160 import parse_rad160

GATEWAY = Target(
    gateway="https://iig.example.org/wado/",
    home_community_id=HomeCommunityId("1.2.3"),
    locations={"ACME": Oid("1.2.3.200")},
)
STUDY, SERIES = Uid("1.2.840.1"), Uid("1.2.840.1.1")


def request(**fields: object) -> RetrieveRequest:
    return RetrieveRequest(study_uid=STUDY, series_uid=SERIES, **fields)  # type: ignore[arg-type]


def rad160(url: str) -> tuple[str, str | None]:
    path, _, query = url.removeprefix(str(GATEWAY.gateway)).partition("?")
    parsed = parse_rad160(path, query)
    return str(parsed.retrieve_location_uid), parsed.retrieve_url


def test_an_oid_is_used_as_it_is() -> None:
    [url] = urls_for(request(retrieve_location_uid=Oid("1.2.3.9")), GATEWAY)
    assert rad160(url) == ("1.2.3.9", None)


def test_an_opaque_identifier_goes_through_its_alias() -> None:
    [url] = urls_for(request(opaque_location="ACME", retrieve_url="https://x.example/rs"), GATEWAY)
    assert rad160(url) == ("1.2.3.200", None)


@pytest.mark.parametrize("opaque", ["OTHER", None])
def test_without_alias_the_retrieve_url_is_the_fallback(opaque: str | None) -> None:
    [url] = urls_for(
        request(opaque_location=opaque, retrieve_url="pacs.example.org/dicom-web/"), GATEWAY
    )
    assert rad160(url) == (str(NO_LOCATION), "pacs.example.org/dicom-web/")


@pytest.mark.parametrize("retrieve_url", [None, "ftp://pacs.example.org/", "https://u:p@h/"])
def test_with_nothing_usable_the_error_names_series_and_identifier(
    retrieve_url: str | None,
) -> None:
    with pytest.raises(UnroutableSeries) as caught:
        urls_for(request(opaque_location="ELSEWHERE", retrieve_url=retrieve_url), GATEWAY)
    assert isinstance(caught.value, ManifestError)
    assert str(SERIES) in str(caught.value)
    assert "'ELSEWHERE'" in str(caught.value)
    assert caught.value.identifier == "ELSEWHERE"


def test_a_study_request_names_the_study() -> None:
    study_level = RetrieveRequest(study_uid=STUDY, opaque_location="ELSEWHERE")
    with pytest.raises(UnroutableSeries, match=f"study {STUDY}"):
        urls_for(study_level, GATEWAY)


def test_direct_mode_without_retrieve_url_names_the_series() -> None:
    with pytest.raises(UnroutableSeries, match=f"series {SERIES}: no Retrieve URL"):
        urls_for(request(retrieve_location_uid=Oid("1.2.3.9")), Target())
