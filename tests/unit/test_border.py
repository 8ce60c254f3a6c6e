"""The border mapping (gateway.protocols.xcwado.border) and the headers it filters (gateway.protocols.xcwado.answer_headers.hide_source)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from gateway.protocols.xcwado.answer_headers import hide_source
from gateway.protocols.xcwado.border import Border, parse_base

BASE = "http://pacs:8042/dicom-web/"
PUBLIC = "https://gw.example.org/wado/homeCommunityId/5.6/RetrieveLocationUID/7.8/"
BORDER = Border.create(
    bases=(BASE, "http://10.0.0.7:8042/dicom-web/"),
    request_url=BASE + "studies/1/series/2/metadata",
    public=PUBLIC,
)


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("http://pacs:8042/dicom-web/studies/1", PUBLIC + "studies/1"),
        ("http://10.0.0.7:8042/dicom-web/studies/1", PUBLIC + "studies/1"),  # failover address
        ("HTTP://PACS:08042/dicom-web/studies/1#f", PUBLIC + "studies/1#f"),
        ("  /dicom-web/studies/1?a=b  ", PUBLIC + "studies/1?a=b"),
        ("instances/3", PUBLIC + "studies/1/series/2/instances/3"),
        ("../../../../../dicom-web/studies/%31", PUBLIC + "studies/1"),
        ("http://pacs:8042/dicom-web", PUBLIC[:-1]),
        ("http://PACS:8042/Dicom-Web/Studies/1", PUBLIC + "Studies/1"),
        ("http:\\\\pacs:8042\\dicom-web\\studies/1", PUBLIC + "studies/1"),
        ("http://pa\tcs:8042/dicom-web/studies/1", PUBLIC + "studies/1"),
        ("http://pacs:8042/other", ""),
        ("/", ""),
        ("https://elsewhere/dicom-web/studies/1", None),
        ("http://pacs:9999/dicom-web/studies/1", None),
        ("mailto:someone@pacs", None),
        ("http://[::1/broken", None),
        ("http://pacs:99999/x", None),
        ("", None),
    ],
)
def test_map_reference(reference: str, expected: str | None) -> None:
    assert BORDER.map_reference(reference) == expected


def test_base_urls_are_normalised() -> None:
    base = parse_base("HTTPS://[FD00:0::1]:443/a/./b/../c")
    assert (base.scheme, base.host, base.port, base.path) == ("https", "fd00::1", None, "/a/c/")
    with pytest.raises(ValueError, match="absolute"):
        parse_base("/relative/")


def headers(*pairs: tuple[str, str]) -> CIMultiDict[str]:
    return CIMultiDict(pairs)


def test_url_headers_are_mapped_or_dropped() -> None:
    found = headers(
        ("Content-Location", "/dicom-web/studies/1/series/2/metadata"),
        ("Location", "http://pacs:8042/admin"),
        ("Link", '<http://pacs:8042/dicom-web/studies/1>; rel="up", <https://x.org/a>; rel="b"'),
        ("Warning", '299 pacs:8042 "partial"'),
        ("Warning", '299 - "fine"'),
        ("ETag", '"abc"'),
        ("Content-Type", 'multipart/related; boundary="pacs"'),
        ("X-Origin", "P%41CS"),
    )
    hide_source(found, BORDER)
    assert found.getall("Content-Location") == [PUBLIC + "studies/1/series/2/metadata"]
    assert "Location" not in found  # the source's origin, outside what the gateway serves
    assert found["Link"] == f'<{PUBLIC}studies/1>; rel="up", <https://x.org/a>; rel="b"'
    assert found.getall("Warning") == ['299 - "fine"']
    assert found["ETag"] == '"abc"'
    assert found["Content-Type"] == 'multipart/related; boundary="pacs"'  # opaque, kept
    assert "X-Origin" not in found


def test_a_link_to_something_the_gateway_does_not_serve_goes_whole() -> None:
    found = headers(("Link", '</dicom-web/studies/1>; rel="a", </metrics>; rel="b"'))
    hide_source(found, BORDER)
    assert "Link" not in found
