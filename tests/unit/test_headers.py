"""Which headers cross the gateway (gateway.relay.headers)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.relay.headers import request_headers, response_headers
from routing.errors import UnsupportedTransferSyntax
from routing.rad160 import ResourceKind


def test_request_headers_are_an_allow_list() -> None:
    incoming = CIMultiDict(
        {
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
            "Authorization": "Bearer secret",
            "Cookie": "session=1",
            "Accept-Encoding": "gzip",
            "X-Forwarded-For": "10.0.0.1",
            "Range": "bytes=0-99",
        }
    )
    out = request_headers(CIMultiDictProxy(incoming), ResourceKind.INSTANCES, "rid-1")
    assert out["Accept"].endswith("transfer-syntax=1.2.840.10008.1.2.1")
    assert out["Accept-Encoding"] == "identity"
    assert out["Range"] == "bytes=0-99"
    assert out["X-Request-ID"] == "rid-1"
    assert "Authorization" not in out
    assert "Cookie" not in out
    assert "X-Forwarded-For" not in out


@pytest.mark.checklist(22)
def test_missing_accept_gets_the_dicomweb_default() -> None:
    empty: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    assert (
        request_headers(empty, ResourceKind.INSTANCES, "r")["Accept"]
        == 'multipart/related; type="application/dicom"'
    )
    assert request_headers(empty, ResourceKind.METADATA, "r")["Accept"] == "application/dicom+json"
    assert request_headers(empty, ResourceKind.RENDERED, "r")["Accept"] == "*/*"


def test_response_headers_drop_hop_by_hop_and_connection_listed_ones() -> None:
    upstream = CIMultiDict(
        [
            ("Content-Type", 'multipart/related; type="application/dicom"; boundary=b'),
            ("Connection", "close, X-Private"),
            ("X-Private", "1"),
            ("Keep-Alive", "timeout=1"),
            ("Transfer-Encoding", "chunked"),
            ("Server", "Orthanc"),
            ("Warning", "299 orthanc: some instances were not converted"),
            ("Warning", "110 stale"),
            ("Content-Length", "10"),
            ("ETag", '"abc"'),
        ]
    )
    out = response_headers(CIMultiDictProxy(upstream))
    assert set(out.keys()) == {"Content-Type", "Warning", "ETag"}
    assert out.getall("Warning") == ["299 orthanc: some instances were not converted", "110 stale"]


# --- checklist item 23: never Implicit VR Little Endian or Explicit VR Big Endian -----------

IMPLICIT = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
EXPLICIT = "1.2.840.10008.1.2.1"
DICOM = 'multipart/related; type="application/dicom"'


def outbound_accept(*values: str) -> list[str]:
    incoming = CIMultiDictProxy(CIMultiDict([("Accept", value) for value in values]))
    return request_headers(incoming, ResourceKind.INSTANCES, "r").getall("Accept")


@pytest.mark.parametrize(
    "accept",
    [
        f"{DICOM}; transfer-syntax={IMPLICIT}",
        f"{DICOM}; transfer-syntax={BIG_ENDIAN}",
        f'{DICOM}; transfer-syntax="{IMPLICIT}"',
        f"{DICOM};Transfer-Syntax = {IMPLICIT}",
        f"{DICOM}; transfer-syntax={IMPLICIT}, {DICOM}; transfer-syntax={BIG_ENDIAN}",
        f"{DICOM}; transfer-syntax=urn:oid:{IMPLICIT}",
        f'{DICOM}; transfer-syntax="{IMPLICIT[:-1]}\\2"',  # a quoted-pair
        f"{DICOM}; transfer-syntax={EXPLICIT}; transfer-syntax={IMPLICIT}",
        f"multipart/related; type=application/octet-stream; transfer-syntax={IMPLICIT}",
        f"{DICOM}; transfer-syntax={IMPLICIT}, {DICOM}; transfer-syntax={EXPLICIT}; q=0",
    ],
)
@pytest.mark.checklist(23)
def test_only_forbidden_transfer_syntaxes_is_refused_before_anything_is_sent(accept: str) -> None:
    """Checklist item 23: nothing acceptable remains, so nothing is requested (406)."""
    with pytest.raises(UnsupportedTransferSyntax):
        outbound_accept(accept)


@pytest.mark.checklist(23)
def test_forbidden_ranges_are_dropped_when_others_remain() -> None:
    """Checklist item 23: PS3.18 §8.7.3.5.2 — not available via DICOMweb, so never asked for."""
    sent = outbound_accept(
        f"{DICOM}; transfer-syntax={IMPLICIT}",
        f'{DICOM}; transfer-syntax="{BIG_ENDIAN}", {DICOM}; transfer-syntax={EXPLICIT}; q=0.5',
    )
    assert sent == [f"{DICOM}; transfer-syntax={EXPLICIT}; q=0.5"]
    assert outbound_accept(f"{DICOM}; transfer-syntax={IMPLICIT}, */*;q=0.1") == ["*/*;q=0.1"]


@pytest.mark.checklist(20)
def test_an_acceptable_accept_is_passed_unchanged() -> None:
    """Checklist item 20: the client's Accept, media type and transfer-syntax, as sent."""
    values = (
        f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.4.50",
        f'{DICOM};transfer-syntax="{EXPLICIT}";q=0.9, {DICOM}; transfer-syntax=*',
        f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.2.1",  # not Big Endian: another UID
    )
    assert outbound_accept(*values) == list(values)


@pytest.mark.checklist(22)
def test_an_empty_accept_gets_the_default() -> None:
    """Checklist item 22: every outbound WADO-RS request carries an Accept."""
    assert outbound_accept("") == [DICOM]
    assert outbound_accept(" , ") == [DICOM]


_RANGE_PIECES = [
    DICOM,
    "multipart/related; type=application/dicom",
    "application/dicom",
    "*/*",
    "multipart/related; type=application/octet-stream",
]
_SYNTAXES = [IMPLICIT, BIG_ENDIAN, EXPLICIT, "1.2.840.10008.1.2.4.50", "*", f"urn:oid:{IMPLICIT}"]


@st.composite
def media_range(draw: st.DrawFn) -> tuple[str, bool, bool]:
    """A range, whether it names a forbidden syntax, and whether it has q > 0."""
    text = draw(st.sampled_from(_RANGE_PIECES))
    forbidden = False
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        syntax = draw(st.sampled_from(_SYNTAXES))
        forbidden |= syntax.removeprefix("urn:oid:") in {IMPLICIT, BIG_ENDIAN}
        name = draw(st.sampled_from(["transfer-syntax", "Transfer-Syntax", "TRANSFER-SYNTAX"]))
        value = draw(st.sampled_from([syntax, f'"{syntax}"']))
        text += draw(st.sampled_from([";", "; ", " ; "])) + f"{name}={value}"
    q = draw(st.sampled_from([None, "0", "0.0", "0.5", "1"]))
    if q is not None:
        text += f"; q={q}"
    return text, forbidden, q not in {"0", "0.0"}


@settings(max_examples=500)
@given(st.lists(st.lists(media_range(), min_size=1, max_size=3), min_size=1, max_size=3))
def test_no_forbidden_transfer_syntax_ever_goes_out(
    headers: list[list[tuple[str, bool, bool]]],
) -> None:
    values = [", ".join(text for text, _, _ in ranges) for ranges in headers]
    ranges = [r for group in headers for r in group]
    acceptable = [text for text, forbidden, positive in ranges if not forbidden and positive]
    any_forbidden = any(forbidden for _, forbidden, _ in ranges)
    try:
        sent = outbound_accept(*values)
    except UnsupportedTransferSyntax:
        assert any_forbidden and not acceptable
        return
    flat = re.sub(r'[\s"]', "", ", ".join(sent)).lower()
    named = re.findall(r"transfer-syntax=([^;,]*)", flat)
    assert not {value.removeprefix("urn:oid:") for value in named} & {IMPLICIT, BIG_ENDIAN}
    if any_forbidden:
        assert acceptable and sent == [", ".join(acceptable_or_zero(ranges))]
    else:
        assert sent == values  # nothing to drop: the client's Accept as sent


def acceptable_or_zero(ranges: list[tuple[str, bool, bool]]) -> list[str]:
    return [text for text, forbidden, _ in ranges if not forbidden]
