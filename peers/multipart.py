"""Whole multipart/related bodies split into parts, for checking results.

A thin wrapper over the gateway's own streaming splitter (:mod:`gateway.relay.multipart`), fed the
whole body at once: tests and the demo check answers with the same parser the consumer
helper uses, not a second one.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.relay.multipart import (
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
)

__all__ = ["Part", "boundary_of", "split_multipart"]


@dataclass(frozen=True, slots=True)
class Part:
    headers: dict[str, str]  # lower-case names
    body: bytes


def split_multipart(body: bytes, content_type: str) -> list[Part]:
    """Parts of a complete body (RFC 2046 §5.1.1); ``ValueError`` if it is not well formed."""
    splitter = MultipartSplitter(boundary_of(content_type))
    parts: list[Part] = []
    headers: dict[str, str] = {}
    pieces: list[bytes] = []
    for event in splitter.feed(body):
        match event:
            case PartStart(start_headers):
                headers, pieces = start_headers, []
            case PartBytes(data):
                pieces.append(data)
            case PartEnd():
                parts.append(Part(headers, b"".join(pieces)))
    splitter.close()  # MultipartError (a ValueError) without the closing delimiter
    return parts
