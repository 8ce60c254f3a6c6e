"""POST /mado/retrieve never asks an upstream for Implicit VR Little Endian or Explicit VR
Big Endian (checklist item 23): the caller's Accept goes through the same reader as a
relayed one, so a forbidden range is dropped, and nothing but forbidden ranges is a 406."""

from __future__ import annotations

import pytest

from gateway.consumer.endpoint import upstream_accept
from routing.errors import UnsupportedTransferSyntax

DICOM = 'multipart/related; type="application/dicom"'


@pytest.mark.checklist(23)
@pytest.mark.parametrize(
    "incoming",
    [
        f"{DICOM}; transfer-syntax=1.2.840.10008.1.2",
        f'{DICOM}; Transfer-Syntax = "1.2.840.10008.1.2.2"',
        f"{DICOM}; transfer-syntax*=''urn:oid:1.2.840.10008.1.2",
    ],
)
def test_only_forbidden_syntaxes_is_refused(incoming: str) -> None:
    with pytest.raises(UnsupportedTransferSyntax):
        upstream_accept(incoming)


@pytest.mark.checklist(23)
def test_a_forbidden_range_is_dropped() -> None:
    allowed = f"{DICOM}; transfer-syntax=1.2.840.10008.1.2.1"
    assert upstream_accept(f"{DICOM}; transfer-syntax=1.2.840.10008.1.2, {allowed}") == allowed
