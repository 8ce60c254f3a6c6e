"""The RAD-160 request grammar (routing.rad160), on the MADO Appendix XA examples and edges."""

from __future__ import annotations

import pytest

from routing.errors import InvalidIdentifier, InvalidRequestPath, UnsupportedTransferSyntax
from routing.rad160 import ResourceKind, parse_rad160, strip_query_param

STUDY = "1.2.840.113619.2.207.28521.42888.1640475282.450"
PREFIX = "homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.840.9.10.11.12/"


@pytest.mark.checklist(8)
def test_figure_xa2_example_with_study_spelling_and_trailing_slash() -> None:
    request = parse_rad160(f"{PREFIX}study/{STUDY}/")
    assert request.home_community_id == "5.6.7.8"
    assert request.retrieve_location_uid == "1.2.840.9.10.11.12"
    assert request.study == STUDY
    assert request.level == "study"
    assert request.kind is ResourceKind.INSTANCES
    assert request.resource_path == f"studies/{STUDY}"  # always "studies" towards a source
    assert request.relay_path == f"{PREFIX}study/{STUDY}/"  # unchanged towards a gateway
    assert request.retrieve_url is None


def test_figure_xa4_example_with_unencoded_retrieve_url() -> None:
    request = parse_rad160(f"{PREFIX}study/{STUDY}", "retrieveurl=hostname/dicom-web-rs/")
    assert request.retrieve_url == "hostname/dicom-web-rs/"
    assert request.source_query == ""


@pytest.mark.checklist(16)
@pytest.mark.parametrize("name", ["retrieveurl", "retrieveURL", "RetrieveURL", "RETRIEVEURL"])
def test_retrieveurl_in_any_letter_case_and_percent_encoded(name: str) -> None:
    request = parse_rad160(
        f"{PREFIX}studies/{STUDY}", f"{name}=ids.a.example.org%2Fpacs%2Fwado-rs%2F&window=40,400"
    )
    assert request.retrieve_url == "ids.a.example.org/pacs/wado-rs/"
    assert request.source_query == "window=40,400"


@pytest.mark.checklist(9)
def test_prefixed_oids_are_canonical_and_the_prefix_is_rebuilt_canonically() -> None:
    request = parse_rad160(
        f"homeCommunityId/urn:oid:5.6.7.8/RetrieveLocationUID/oid:1.2.3/studies/{STUDY}"
    )
    assert request.home_community_id == "5.6.7.8"
    assert request.retrieve_location_uid == "1.2.3"
    assert request.prefix == "homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3/"


@pytest.mark.parametrize(
    ("tail", "level", "kind", "resource"),
    [
        ("studies/1.2/series/1.2.3", "series", ResourceKind.INSTANCES, "studies/1.2/series/1.2.3"),
        (
            "studies/1.2/series/1.2.3/instances/1.2.3.4",
            "instance",
            ResourceKind.INSTANCES,
            "studies/1.2/series/1.2.3/instances/1.2.3.4",
        ),
        ("studies/1.2/metadata", "study", ResourceKind.METADATA, "studies/1.2/metadata"),
        (
            "studies/1.2/series/1.3/instances/1.4/frames/1,2,3",
            "instance",
            ResourceKind.FRAMES,
            "studies/1.2/series/1.3/instances/1.4/frames/1,2,3",
        ),
        ("studies/1.2/series/1.3/rendered", "series", ResourceKind.RENDERED, None),
        (
            "studies/1.2/series/1.3/instances/1.4/thumbnail",
            "instance",
            ResourceKind.THUMBNAIL,
            None,
        ),
        (
            "studies/1.2/series/1.3/instances/1.4/bulk/7fe00010",
            "instance",
            ResourceKind.BULKDATA,
            None,
        ),
    ],
)
def test_levels_and_resources(
    tail: str, level: str, kind: ResourceKind, resource: str | None
) -> None:
    request = parse_rad160(PREFIX + tail)
    assert request.level == level
    assert request.kind is kind
    assert request.resource_path == (resource or tail)


@pytest.mark.parametrize(
    "path",
    [
        "",
        "homeCommunityId/5.6.7.8",
        f"homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2/{STUDY}",
        f"community/5.6.7.8/RetrieveLocationUID/1.2/studies/{STUDY}",
        f"homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2/patients/{STUDY}",
        f"{PREFIX}studies/{STUDY}//series/1.2",
        f"{PREFIX}studies/{STUDY}/series",
        f"{PREFIX}studies/{STUDY}/series/1.2/instances",
        f"{PREFIX}studies/{STUDY}/instances/1.2",
        f"{PREFIX}studies/{STUDY}/metadata/..",
        f"{PREFIX}studies/{STUDY}/%2e%2e/%2e%2e/admin",
        f"{PREFIX}studies/{STUDY}/" + "/".join(["a"] * 17),
    ],
)
def test_paths_outside_the_grammar_are_refused(path: str) -> None:
    with pytest.raises(InvalidRequestPath):
        parse_rad160(path)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        (f"homeCommunityId/ACME/RetrieveLocationUID/1.2/studies/{STUDY}", "homeCommunityId"),
        (f"homeCommunityId/5.6.7.8/RetrieveLocationUID/1.02/studies/{STUDY}", "OID"),
        (f"{PREFIX}studies/{STUDY}.", "UID"),
        (f"{PREFIX}studies/{STUDY}/series/1.2.3.x", "UID"),
        (f"{PREFIX}studies/1.2/series/1.3/instances/{'1' * 65}", "UID"),
        (f"{PREFIX}studies/1%2E02", "UID"),
    ],
)
def test_invalid_identifiers_are_named(path: str, kind: str) -> None:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_rad160(path)
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    "query",
    [
        "retrieveurl=a&retrieveurl=b",
        "retrieveurl=",
        "retrieveurl=%0D%0Ahttps://x",
        "retrieveurl=a%20b",
    ],
)
def test_bad_retrieve_urls_are_refused(query: str) -> None:
    with pytest.raises(InvalidRequestPath):
        parse_rad160(f"{PREFIX}studies/{STUDY}", query)


def test_strip_query_param_keeps_other_pairs_verbatim() -> None:
    assert strip_query_param("a=1&RetrieveUrl=x%2F&b=%20", "retrieveurl") == "a=1&b=%20"
    assert strip_query_param("", "retrieveurl") == ""


@pytest.mark.parametrize(
    "query",
    [
        "accept=multipart/related;type=application/dicom;transfer-syntax=1.2.840.10008.1.2",
        "ACCEPT=multipart%2Frelated%3B%20type%3D%22application%2Fdicom%22%3B%20"
        "transfer-syntax%3D1.2.840.10008.1.2.2",
        "accept=multipart%252Frelated%253Btransfer-syntax%253D1.2.840.10008.1.2",
        "x=1&accept=application/dicom;transfer-syntax=1.2.840.10008.1.2.1,"
        "application/dicom;transfer-syntax=%221.2.840.10008.1.2%22",
        "transfer-syntax=1.2.840.10008.1.2",
        "transferSyntax=1.2.840.10008.1.2.2",
    ],
)
@pytest.mark.checklist(23)
def test_a_query_asking_for_a_forbidden_transfer_syntax_is_refused(query: str) -> None:
    """Checklist item 23, for the accept query parameter (PS3.18 §8.3.3.1): the query is
    forwarded unedited, so one that names Implicit VR LE or Explicit VR BE is refused."""
    with pytest.raises(UnsupportedTransferSyntax):
        parse_rad160(f"{PREFIX}studies/{STUDY}", query)


def test_a_query_accept_with_allowed_syntaxes_passes() -> None:
    query = "accept=multipart/related;type=application/dicom;transfer-syntax=1.2.840.10008.1.2.1"
    assert parse_rad160(f"{PREFIX}studies/{STUDY}", query).raw_query == query
