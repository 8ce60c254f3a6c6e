"""One host rule (issue 8, item 5): a ``Host`` the gateway would reflect into its public URLs
reads as the same host as an outbound URL naming it would; a spelling the URL policy refuses
as a hidden IP address (``0x7f.1``, ``127.0.0.0x1``) is no host name here either."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.protocols.xcwado.authority import public_authority
from routing.urlpolicy import UrlRefused, vet_url

LOCAL = ("127.0.0.1", 8080)


@pytest.mark.parametrize("host", ["0x7f.1", "127.0.0.0x1", "example.0x10", "1.2.3.4.", "0x7f000001"])
def test_a_hidden_ip_address_is_no_host_name(host: str) -> None:
    with pytest.raises(ValueError, match="host"):
        public_authority([host], scheme="http", local=LOCAL)


@given(st.text(alphabet="0123456789abcdefx.-_", min_size=1, max_size=24))
def test_host_and_url_policy_agree(host: str) -> None:
    try:
        vet_url(f"http://{host}/", allow_http=True)
        url_ok = True
    except UrlRefused:
        url_ok = False
    try:
        public_authority([host], scheme="http", local=LOCAL)
        host_ok = True
    except ValueError:
        host_ok = False
    assert host_ok == url_ok
