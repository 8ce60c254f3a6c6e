"""Streaming URL rewriting (gateway.rewrite)."""

from __future__ import annotations

import pytest

from gateway.rewrite import PrefixRewriter, is_rewritable


def run(chunks: list[bytes], needle: bytes, replacement: bytes) -> bytes:
    rewriter = PrefixRewriter(needle, replacement)
    return b"".join(rewriter.feed(c) for c in chunks) + rewriter.flush()


def test_match_split_across_chunks_is_rewritten() -> None:
    body = b'{"BulkDataURI":"http://pacs:8042/dicom-web/studies/1/bulk"}'
    chunks = [body[:20], body[20:25], body[25:]]
    assert run(chunks, b"http://pacs:8042/dicom-web/", b"https://gw/x/") == body.replace(
        b"http://pacs:8042/dicom-web/", b"https://gw/x/"
    )


def test_partial_needle_at_the_end_is_emitted_unchanged() -> None:
    assert run([b"abc http://pa"], b"http://pacs/", b"X") == b"abc http://pa"


def test_empty_needle_is_refused() -> None:
    with pytest.raises(ValueError, match="needle"):
        PrefixRewriter(b"", b"x")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/dicom+json", True),
        ("application/dicom+json; charset=utf-8", True),
        ("application/json", True),
        ('multipart/related; type="application/dicom+xml"; boundary=x', True),
        ('multipart/related; type="application/dicom"; boundary=x', False),
        ("application/octet-stream", False),
        ("image/jpeg", False),
    ],
)
def test_only_metadata_is_rewritable(content_type: str, expected: bool) -> None:
    assert is_rewritable(content_type) is expected
