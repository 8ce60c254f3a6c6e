"""The authority a consumer reached the gateway under (gateway.protocols.xcwado.authority)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocols.xcwado.authority import public_authority

LOCAL = ("127.0.0.1", 8080)


@pytest.mark.parametrize(
    ("hosts", "scheme", "local", "expected"),
    [
        ([], "http", LOCAL, "127.0.0.1:8080"),  # HTTP/1.0: the socket's own address
        ([], "http", ("::1", 8080, 0, 0), "[::1]:8080"),
        ([], "https", ("10.0.0.5", 443), "10.0.0.5"),
        ([], "http", ("fe80::1%eth0", 80), "[fe80::1]"),
        (["gw.example.org"], "https", ("10.0.0.5", 443), "gw.example.org"),
        (["gw.example.org"], "https", ("10.0.0.5", 8443), "gw.example.org:8443"),
        (["GW.Example.ORG:8443"], "https", ("10.0.0.5", 443), "gw.example.org:8443"),
        (["gw:443"], "https", LOCAL, "gw"),
        (["gw:443"], "http", LOCAL, "gw:443"),
        (["under_score.example"], "http", LOCAL, "under_score.example:8080"),
        (["[2001:DB8::0:1]"], "http", LOCAL, "[2001:db8::1]:8080"),
        ([" gw.example.org "], "http", LOCAL, "gw.example.org:8080"),
    ],
)
def test_authority(hosts: list[str], scheme: str, local: tuple[str, int], expected: str) -> None:
    assert public_authority(hosts, scheme=scheme, local=local) == expected


_SAFE = set("abcdefghijklmnopqrstuvwxyz0123456789.-_[]:")


@given(st.text(max_size=80))
def test_whatever_is_accepted_cannot_break_out_of_a_document(host: str) -> None:
    """Hostile Host values either raise ValueError or come back as host name characters only
    (no quote, angle bracket, ampersand, backslash, space or control character)."""
    try:
        authority = public_authority([host], scheme="http", local=LOCAL)
    except ValueError:
        return
    assert set(authority) <= _SAFE
