"""The streaming multipart splitter reassembles every part, however the body is cut."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.multipart import (
    MultipartError,
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
)


def split(body: bytes, boundary: str, cuts: list[int]) -> list[tuple[dict[str, str], bytes]]:
    splitter = MultipartSplitter(boundary)
    parts: list[tuple[dict[str, str], bytes]] = []
    points = sorted({min(c, len(body)) for c in cuts})
    for a, b in zip([0, *points], [*points, len(body)], strict=True):
        for event in splitter.feed(body[a:b]):
            match event:
                case PartStart(headers):
                    parts.append((headers, b""))
                case PartBytes(data):
                    parts[-1] = (parts[-1][0], parts[-1][1] + data)
                case PartEnd():
                    pass
    splitter.close()
    return parts


@settings(max_examples=300)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=15),
    boundary=st.sampled_from(["b", "x-1", "6411885e-4b3f-4996"]),
    preamble=st.booleans(),
)
def test_parts_are_reassembled(
    payloads: list[bytes], cuts: list[int], boundary: str, preamble: bool
) -> None:
    delimiter = f"--{boundary}".encode()
    assume(not any(delimiter in p for p in payloads))  # RFC 2046 §5.1.1: never inside a part
    body = b"ignored preamble\r\n" if preamble else b""
    for index, payload in enumerate(payloads):
        body += (
            delimiter
            + f"\r\nContent-Type: application/dicom\r\nX-Index: {index}\r\n\r\n".encode()
            + payload
            + b"\r\n"
        )
    body += delimiter + b"--\r\nepilogue"
    parts = split(body, boundary, cuts)
    assert [p[1] for p in parts] == payloads
    assert [p[0]["x-index"] for p in parts] == [str(i) for i in range(len(payloads))]
    assert parts[0][0]["content-type"] == "application/dicom"


def test_missing_end_is_an_error() -> None:
    splitter = MultipartSplitter("b")
    list(splitter.feed(b"--b\r\n\r\npartial"))
    with pytest.raises(MultipartError, match="closing boundary"):
        splitter.close()


def test_boundary_of() -> None:
    assert boundary_of('multipart/related; type="application/dicom"; boundary="a b"') == "a b"
    with pytest.raises(MultipartError):
        boundary_of("multipart/related")
