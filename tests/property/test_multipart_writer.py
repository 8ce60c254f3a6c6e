"""The multipart core writes what it reads (issue 8, item 5): a body framed with
``part_head``/``closing`` splits back into its parts and passes the close check."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.relay.multipart import (
    CloseCheck,
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
    closing,
    part_head,
)

BCHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.text(alphabet=BCHARS, min_size=1, max_size=70)


@settings(max_examples=300)
@given(
    boundary=boundaries,
    parts=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
    cut=st.integers(min_value=1, max_value=64),
)
def test_written_parts_read_back(boundary: str, parts: list[bytes], cut: int) -> None:
    body = b"".join(
        part_head(boundary, {"Content-Type": "application/dicom"}) + data for data in parts
    ) + closing(boundary)
    content_type = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    assert boundary_of(content_type) == boundary
    splitter = MultipartSplitter(boundary)
    read: list[bytes] = []
    for start in range(0, len(body), cut):
        for event in splitter.feed(body[start : start + cut]):
            match event:
                case PartStart(headers):
                    assert headers == {"content-type": "application/dicom"}
                    read.append(b"")
                case PartBytes(data):
                    read[-1] += data
                case PartEnd():
                    pass
    splitter.close()
    assert read == parts
    check = CloseCheck(boundary)
    assert check.complete(check.keep(CloseCheck.START, body))
    assert not check.complete(check.keep(CloseCheck.START, body[:-3]))
