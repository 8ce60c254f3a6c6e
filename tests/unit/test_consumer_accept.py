"""POST /mado/retrieve: which Accept goes upstream (issue 16, class 1)."""

from __future__ import annotations

import pytest

from gateway.consumer.endpoint import upstream_accept

AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'


@pytest.mark.parametrize(
    "incoming",
    [None, "", "*/*", 'multipart/related; type="application/dicom"', "application/dicom+json"],
)
def test_no_transfer_syntax_asks_for_the_objects_as_stored(incoming: str | None) -> None:
    assert upstream_accept(incoming) == AS_STORED


@pytest.mark.parametrize(
    "incoming",
    [
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
        "multipart/related;type=application/dicom;Transfer-Syntax = 1.2.840.10008.1.2.4.70",
        'multipart/related; type="application/dicom"; transfer-syntax=*',
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50, '
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1',
    ],
)
def test_a_named_transfer_syntax_is_passed_unchanged(incoming: str) -> None:
    assert upstream_accept(incoming) == incoming
