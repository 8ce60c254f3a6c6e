"""routing.urlpolicy: URL shape, address classes, redirect decisions (unit and property tests)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.model import AddressPolicy, RedirectPolicy
from routing.urlpolicy import (
    AddressClass,
    Rule,
    UrlRefused,
    classify_address,
    decide_redirect,
    refusing_class,
    vet_url,
)

STRICT = AddressPolicy()
LOOPBACK_NUMBER = 0x7F000001


def rule_of(url: str, *, allow_http: bool = True) -> Rule:
    with pytest.raises(UrlRefused) as caught:
        vet_url(url, allow_http=allow_http)
    return caught.value.rule


# --- URL shape -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://2130706433/", Rule.IP_SPELLING),
        ("http://0x7f000001/", Rule.IP_SPELLING),
        ("http://0x7f.0.0.1/", Rule.IP_SPELLING),
        ("http://017700000001/", Rule.IP_SPELLING),
        ("http://0177.0.0.1/", Rule.IP_SPELLING),
        ("http://127.1/", Rule.IP_SPELLING),
        ("http://127.0.1/", Rule.IP_SPELLING),
        ("http://127.0.0.1./", Rule.IP_SPELLING),
        ("http://1.2.3.4.5/", Rule.IP_SPELLING),
        ("http://256.0.0.1/", Rule.IP_SPELLING),
        ("https://trusted.example.org@evil.example/", Rule.USERINFO),
        ("https://user:pw@host.example/", Rule.USERINFO),
        ("https://host.example:443@127.0.0.1/", Rule.USERINFO),
        ("file:///etc/passwd", Rule.SCHEME),
        ("gopher://127.0.0.1:70/_x", Rule.SCHEME),
        ("ftp://host.example/", Rule.SCHEME),
        ("javascript:alert(1)", Rule.SCHEME),
        ("data:text/plain,hi", Rule.SCHEME),
        ("dict://127.0.0.1:11211/", Rule.SCHEME),
        ("https://host.example/a/%2e%2e/admin", Rule.TRAVERSAL),
        ("https://host.example/a/%2E%2E/admin", Rule.TRAVERSAL),
        ("https://host.example/a/%252e%252e/admin", Rule.TRAVERSAL),
        ("https://host.example/a/..%2fadmin", Rule.TRAVERSAL),
        ("https://host.example/a/%5c..%5cadmin", Rule.TRAVERSAL),
        ("https://host.example/a/../admin", Rule.TRAVERSAL),
        ("https://host.example/a/./b", Rule.TRAVERSAL),
        ("https://host.example/a\\..\\b", Rule.MALFORMED),
        ("https://host.example/a%0d%0aX-Injected:%201", Rule.MALFORMED),
        ("https://host.example/a\r\nX: 1", Rule.MALFORMED),
        ("https://host.example/a b", Rule.MALFORMED),
        ("https://host.example/%zz", Rule.MALFORMED),
        ("https://host.example/a%00b", Rule.MALFORMED),
        ("https://[fe80::1%25eth0]/", Rule.MALFORMED),
        ("https://[::1/", Rule.MALFORMED),
        ("https://h\u00e9st.example/", Rule.MALFORMED),
        ("https://127\u30020\u30020\u30021/", Rule.MALFORMED),
        ("https://host.example:99999/", Rule.MALFORMED),
        ("https://host.example:0/", Rule.MALFORMED),
        ("https:///nohost", Rule.MALFORMED),
        ("https://-bad-.example/", Rule.MALFORMED),
    ],
)
def test_hostile_urls_are_refused_with_their_rule(url: str, rule: Rule) -> None:
    assert rule_of(url) is rule


def test_a_backslash_is_refused_before_the_query_only() -> None:
    assert rule_of("https://host.example/a\\b?x=1") is Rule.MALFORMED
    assert rule_of("https://host.example\\@evil.example/") is Rule.MALFORMED
    query = "https://host.example/a?x=\\y&z=%5C"  # forwarded byte for byte (checklist item 11)
    assert vet_url(query, allow_http=False).url == query


def test_http_needs_the_policy() -> None:
    assert rule_of("http://pacs.example.org/", allow_http=False) is Rule.SCHEME
    assert vet_url("http://pacs.example.org/", allow_http=True).port == 80


def test_good_urls_give_origin_and_literal_address() -> None:
    target = vet_url("https://PACS.Example.org/dicom-web/studies/1.2?x=1#frag", allow_http=False)
    assert target.origin == "https://pacs.example.org:443"
    assert target.address is None
    assert target.url.endswith("studies/1.2?x=1")
    v6 = vet_url("http://[::ffff:127.0.0.1]:8042/", allow_http=True)
    assert v6.address == ipaddress.ip_address("::ffff:127.0.0.1")
    assert v6.origin == "http://[::ffff:7f00:1]:8042"
    assert vet_url("http://10.1.2.3:8042/a/", allow_http=True).address == ipaddress.ip_address(
        "10.1.2.3"
    )


# --- address classes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "cls"),
    [
        ("127.0.0.1", AddressClass.LOOPBACK),
        ("127.255.0.9", AddressClass.LOOPBACK),
        ("::1", AddressClass.LOOPBACK),
        ("::ffff:127.0.0.1", AddressClass.LOOPBACK),
        ("::127.0.0.1", AddressClass.LOOPBACK),  # IPv4-compatible
        ("2002:7f00:1::", AddressClass.LOOPBACK),  # 6to4 around 127.0.0.1
        ("64:ff9b::7f00:1", AddressClass.LOOPBACK),  # NAT64 around 127.0.0.1
        ("169.254.169.254", AddressClass.METADATA),
        ("fd00:ec2::254", AddressClass.METADATA),
        ("::ffff:169.254.169.254", AddressClass.METADATA),
        ("169.254.1.1", AddressClass.LINK_LOCAL),
        ("fe80::1", AddressClass.LINK_LOCAL),
        ("10.0.0.1", AddressClass.PRIVATE),
        ("172.16.5.4", AddressClass.PRIVATE),
        ("192.168.1.1", AddressClass.PRIVATE),
        ("100.64.0.1", AddressClass.PRIVATE),
        ("fd12:3456::1", AddressClass.PRIVATE),
        ("::ffff:10.0.0.1", AddressClass.PRIVATE),
        ("224.0.0.1", AddressClass.MULTICAST),
        ("ff02::1", AddressClass.MULTICAST),
        ("0.0.0.0", AddressClass.UNSPECIFIED),
        ("0.1.2.3", AddressClass.UNSPECIFIED),
        ("::", AddressClass.UNSPECIFIED),
        ("240.0.0.1", AddressClass.RESERVED),
        ("255.255.255.255", AddressClass.RESERVED),
        ("8.8.8.8", AddressClass.PUBLIC),
        ("2606:4700::1111", AddressClass.PUBLIC),
        ("::ffff:8.8.8.8", AddressClass.PUBLIC),
    ],
)
def test_address_classes(address: str, cls: AddressClass) -> None:
    assert classify_address(ipaddress.ip_address(address)) is cls


def test_policy_flags_and_networks() -> None:
    loop = ipaddress.ip_address("127.0.0.1")
    meta = ipaddress.ip_address("169.254.169.254")
    assert refusing_class(loop, STRICT) is AddressClass.LOOPBACK
    assert refusing_class(loop, AddressPolicy(allow_loopback=True)) is None
    assert refusing_class(meta, AddressPolicy(allow_link_local=True)) is AddressClass.METADATA
    only = AddressPolicy(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
    assert refusing_class(loop, only) is None
    assert refusing_class(ipaddress.ip_address("127.0.0.2"), only) is AddressClass.LOOPBACK
    assert refusing_class(ipaddress.ip_address("::ffff:127.0.0.1"), only) is None
    assert refusing_class(ipaddress.ip_address("8.8.8.8"), STRICT) is None


# --- properties ------------------------------------------------------------------------------


def _spellings(number: int) -> list[str]:
    a, b, c, d = number.to_bytes(4, "big")
    return [
        str(number),
        hex(number),
        "0" + oct(number)[2:],
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"0{a:o}.{b}.{c}.{d}",
        f"{hex(a)}.{b}.{c}.{d}",
        f"{a}.{b}.{c}.{d}.",
    ]


@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(range(8)))
def test_no_numeric_spelling_but_the_dotted_quad_passes(number: int, which: int) -> None:
    spelling = _spellings(number)[which]
    canonical = str(ipaddress.IPv4Address(number))
    if spelling != canonical:
        with pytest.raises(UrlRefused) as caught:
            vet_url(f"http://{spelling}:8080/x", allow_http=True)
        assert caught.value.rule in {Rule.IP_SPELLING, Rule.MALFORMED}
        return
    target = vet_url(f"http://{spelling}:8080/x", allow_http=True)
    # Only the canonical spelling may pass, and then the address is known exactly.
    assert target.address == ipaddress.IPv4Address(number)
    assert spelling == str(ipaddress.IPv4Address(number))


@pytest.mark.checklist(29)
@settings(max_examples=300)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_loopback_spelling_in_v4_and_v6_is_refused_by_the_strict_policy(n: int) -> None:
    loop = ipaddress.IPv4Address((127 << 24) | (n & 0xFFFFFF))
    for text in (
        str(loop),
        f"[::ffff:{loop}]",
        f"[::ffff:{int(loop) >> 16:x}:{int(loop) & 0xFFFF:x}]",
        "[::1]",
    ):
        try:
            target = vet_url(f"https://{text}/", allow_http=False)
        except UrlRefused:
            continue
        assert target.address is not None
        assert refusing_class(target.address, STRICT) is AddressClass.LOOPBACK


@settings(max_examples=200)
@given(
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.-", min_size=1, max_size=20),
    st.sampled_from(["user", "trusted.example.org", "a:b", "x%40y", "https://ok.example"]),
)
def test_userinfo_is_always_refused(host: str, user: str) -> None:
    with pytest.raises(UrlRefused):
        vet_url(f"https://{user}@{host}/", allow_http=True)


@settings(max_examples=200)
@given(
    st.sampled_from(["..", ".", "%2e%2e", "%2E.", ".%2e", "%252e%252e", "%2f", "%5C", "%25%32%66"]),
    st.text(alphabet="abc/", max_size=6),
)
def test_traversal_segments_are_refused_however_encoded(segment: str, tail: str) -> None:
    with pytest.raises(UrlRefused):
        vet_url(f"https://pacs.example.org/dicom/{segment}/{tail}", allow_http=False)


@settings(max_examples=200)
@given(st.sampled_from(["file", "gopher", "ftp", "ldap", "dict", "ws", "wss", "jar", "HTTPX"]))
def test_other_schemes_are_refused(scheme: str) -> None:
    assert rule_of(f"{scheme}://pacs.example.org/") is Rule.SCHEME


@settings(max_examples=300)
@given(st.ip_addresses())
def test_address_decision_is_consistent_with_the_class(address: ipaddress.IPv4Address) -> None:
    cls = classify_address(address)
    refused = refusing_class(address, STRICT)
    assert (refused is None) == (cls is AddressClass.PUBLIC)
    everything = AddressPolicy(
        allowed_networks=(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    )
    assert refusing_class(address, everything) is None


# --- redirects -------------------------------------------------------------------------------

UP = "https://pacs-a.example.org:443"
REGISTERED = {UP: "pacs-a", "https://pacs-b.example.org:443": "pacs-b"}


def decide(location: str | None, *, status: int = 302, hops: int = 0, **policy: object):  # type: ignore[no-untyped-def]
    return decide_redirect(
        current_url=f"{UP}/wado/studies/1.2",
        current_upstream="pacs-a",
        status=status,
        location=location,
        method="GET",
        hops=hops,
        visited=frozenset({f"{UP}/wado/studies/1.2"}),
        policy=RedirectPolicy(**policy),  # type: ignore[arg-type]
        registered=REGISTERED,
    )


def redirect_rule(location: str | None, **kw: Any) -> Rule:
    with pytest.raises(UrlRefused) as caught:
        decide(location, **kw)
    return caught.value.rule


@pytest.mark.checklist(28)
def test_redirect_to_another_registered_upstream_drops_credentials() -> None:
    step = decide("https://pacs-b.example.org/x/studies/1.2", status=303)
    assert (step.upstream, step.method, step.drop_credentials) == ("pacs-b", "GET", True)
    same = decide("/wado/other/studies/1.2", status=307)
    assert (same.upstream, same.drop_credentials) == ("pacs-a", False)


@pytest.mark.checklist(27)
def test_redirect_rules() -> None:
    assert redirect_rule("https://evil.example/") is Rule.ORIGIN
    assert redirect_rule("http://pacs-b.example.org/") is Rule.SCHEME
    assert redirect_rule("https://pacs-b.example.org/", hops=2) is Rule.HOP_LIMIT
    assert redirect_rule("https://pacs-b.example.org/", max_hops=0) is Rule.HOP_LIMIT
    assert redirect_rule(f"{UP}/wado/studies/1.2") is Rule.LOOP
    assert redirect_rule(None) is Rule.NO_LOCATION
    assert redirect_rule("   ") is Rule.NO_LOCATION
    assert redirect_rule("https://pacs-a.example.org@evil.example/") is Rule.USERINFO
    assert redirect_rule("https://2130706433/") is Rule.IP_SPELLING
    assert redirect_rule("/wado/%2e%2e/admin") is Rule.TRAVERSAL
    assert redirect_rule("file:///etc/passwd") is Rule.SCHEME
    allowed = decide(
        "https://cdn.example.net/x", allowed_origins=frozenset({"https://cdn.example.net:443"})
    )
    assert allowed.upstream is None and allowed.drop_credentials


@pytest.mark.checklist(27)
@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=5), st.integers(min_value=0, max_value=5))
def test_hop_limit_property(max_hops: int, hops: int) -> None:
    if hops >= max_hops:
        assert redirect_rule("https://pacs-b.example.org/s", hops=hops, max_hops=max_hops) is (
            Rule.HOP_LIMIT
        )
    else:
        assert decide("https://pacs-b.example.org/s", hops=hops, max_hops=max_hops).upstream == (
            "pacs-b"
        )


# --- dot segments in a raw Location (issue 16, item 9) ---------------------------------------

DOT_LOCATIONS = [
    "../admin",
    "./admin",
    "..",
    ".",
    "/..",
    "/wado/../admin",
    "/wado/./studies/1.3",
    "a/../../admin",
    "studies/1.2/..",
    "%2e%2e/admin",
    "%2E./admin",
    ".%2e/admin",
    "%2e/admin",
    "%252e%252e/admin",
    "..;/admin",
    ".;/admin",
    "..;jsessionid=1/admin",
    "%2e%2e;x=1/admin",
    "/wado/..;/admin",
    "..%20/admin",
    ".../admin",
    "%c0%ae%c0%ae/admin",  # overlong UTF-8 '.', decoded as a dot by some servers
    "%ef%bc%8e%ef%bc%8e/admin",  # fullwidth full stops, NFKC-equal to '..'
    "..\\admin",
    "..%5cadmin",
    "..%2fadmin",
    "https://pacs-a.example.org/wado/../admin",
    "https://pacs-b.example.org/x/./y",
    "//pacs-b.example.org/x/../y",
    "https://pacs-b.example.org/x/%2e%2e/y",
]


@pytest.mark.parametrize("location", DOT_LOCATIONS)
def test_dot_segments_in_a_location_are_refused_before_resolution(location: str) -> None:
    assert redirect_rule(location) in {Rule.TRAVERSAL, Rule.MALFORMED}


def test_locations_without_dot_segments_are_still_followed() -> None:
    for location in ("studies/1.3", "/wado/studies/1.3", "x/...y/z", "a.b/c..d", "?q=../x"):
        step = decide(location)
        assert step.upstream == "pacs-a" and not step.drop_credentials


_PIECES = [
    "..", ".", "%2e%2e", "%2E.", ".%2e", "%2e", "%2E", "%252e", "..;", ".;x", "..;a=b",
    "%2e%2e;", "...", "..%20", "%c0%ae", "\\", "%5c", "%2f", "a", "b", "wado", "studies",
    "1.2", "", "a.b", "x..y",
]  # fmt: skip
_HEADS = [
    "",
    "/",
    "https://pacs-a.example.org/",
    "https://pacs-b.example.org/",
    "//pacs-b.example.org/",
    "https://evil.example/",
]


def _dot_only(segment: str) -> bool:
    return segment != "" and segment.strip(". ") == ""


@settings(max_examples=1000)
@given(
    st.sampled_from(_HEADS),
    st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6),
    st.sampled_from(["", "?q=../a", "#../frag"]),
)
def test_a_followed_location_never_holds_a_dot_segment(
    head: str, pieces: list[str], tail: str
) -> None:
    """Any Location built from dot-segment spellings: refused, or followed to a target that
    is under a registered origin and has no dot segment, however decoded."""
    location = head + "/".join(pieces) + tail
    try:
        step = decide(location)
    except UrlRefused:
        return
    assert step.origin in REGISTERED
    path = urlsplit(step.url).path
    for _ in range(4):
        for segment in path.split("/"):
            assert not _dot_only(segment.split(";")[0]), (location, step.url)
        path = unquote(path)
    # Nothing was resolved away: the raw Location's path is in the followed URL as written.
    raw_path = urlsplit(location).path
    assert raw_path.lstrip("/").rstrip("/") in step.url


@pytest.mark.parametrize(
    ("location", "expected"),
    [  # RFC 3986 §5.4.1, those without dot segments, from the current URL below
        ("g", f"{UP}/wado/studies/g"),
        ("g/", f"{UP}/wado/studies/g/"),
        ("/g", f"{UP}/g"),
        ("?y", f"{UP}/wado/studies/1.2?y"),
        ("g?y", f"{UP}/wado/studies/g?y"),
        ("#s", None),  # the current URL again: a loop
        ("g#s", f"{UP}/wado/studies/g"),
        ("g;x?y#s", f"{UP}/wado/studies/g;x?y"),
        ("a//b", f"{UP}/wado/studies/a//b"),  # empty segments are kept, as written
        ("//pacs-b.example.org/g", "https://pacs-b.example.org/g"),
        ("https://pacs-b.example.org/x%2Fy?a=%41", None),  # an encoded '/' is refused
        ("https://pacs-b.example.org/x?a=%41&b=%2f", "https://pacs-b.example.org/x?a=%41&b=%2f"),
    ],
)
def test_a_location_is_resolved_without_rewriting_it(location: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(UrlRefused):
            decide(location)
        return
    assert decide(location).url == expected
