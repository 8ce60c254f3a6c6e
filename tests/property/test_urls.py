"""One URL value (routing.urls.Url, issue 8 item 5): every validator reads a URL through
``parse_url``, so they agree on its origin and on what a base URL may carry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.errors import RetrieveUrlRefused
from routing.registry import normalise_retrieve_url
from routing.urlpolicy import UrlRefused, vet_url
from routing.urls import origin_of, parse_base_url, parse_url

hosts = st.sampled_from(
    ["pacs.example", "PACS.Example.", "127.0.0.1", "[::1]", "[0:0::0:1]", "[2001:DB8::1]", "a-b"]
)
ports = st.sampled_from(["", ":80", ":443", ":8042", ":"])
paths = st.sampled_from(["", "/", "/dicom-web", "/a/b/", "/%7Eme/"])
tails = st.sampled_from(["", "?a=b", "#f", "?"])
urls = st.builds(
    lambda s, u, h, p, path, t: f"{s}://{u}{h}{p}{path}{t}",
    st.sampled_from(["http", "https", "HTTPS", "ftp"]),
    st.sampled_from(["", "user@", "u:p@"]),
    hosts,
    ports,
    paths,
    tails,
)


@settings(max_examples=400)
@given(urls)
def test_the_validators_agree_on_origins(url: str) -> None:
    try:
        vetted = vet_url(url, allow_http=True)
    except UrlRefused:
        vetted = None
    if vetted is not None:
        assert vetted.origin == origin_of(url) == parse_url(url).origin
    try:
        base = parse_base_url(url)
    except ValueError:
        base = None
    try:
        retrieve = normalise_retrieve_url(url)
    except RetrieveUrlRefused:
        retrieve = None
    # A base URL a configuration accepts is one a manifest may name, and the other way round.
    assert (base is None) == (retrieve is None), (base, retrieve)
    if base is not None and retrieve is not None:
        assert origin_of(base) == origin_of(retrieve)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("HTTPS://PACS.example/x", "https://pacs.example:443"),
        ("http://[0:0::1]:8042/", "http://[::1]:8042"),
        ("https://u:p@h:1/", "https://h:1"),
    ],
)
def test_one_spelling_per_origin(url: str, origin: str) -> None:
    assert parse_url(url).origin == origin


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/relative", "absolute"),
        ("https://", "absolute"),
        ("ftp://host/", "no port"),
        ("https://h:99999/", "out of range"),
    ],
)
def test_no_origin_without_scheme_host_and_port(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        origin_of(url)
