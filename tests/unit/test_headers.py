"""Which headers cross the gateway (gateway.headers)."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.headers import request_headers, response_headers
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
