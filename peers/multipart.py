"""Splitting a whole multipart/related body into parts — for checking results, never for the
gateway's own streaming path (which does not parse parts at all)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Part", "boundary_of", "split_multipart"]


@dataclass(frozen=True, slots=True)
class Part:
    headers: dict[str, str]
    body: bytes


def boundary_of(content_type: str) -> str:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    raise ValueError(f"no boundary in {content_type!r}")


def split_multipart(body: bytes, content_type: str) -> list[Part]:
    """Parts of a complete body (RFC 2046 §5.1.1); ``ValueError`` if it is not well formed."""
    delimiter = b"--" + boundary_of(content_type).encode()
    end = body.find(delimiter + b"--")
    if end < 0:
        raise ValueError("no closing delimiter")
    parts = []
    for chunk in body[:end].split(delimiter)[1:]:
        if not chunk.startswith(b"\r\n"):
            raise ValueError("delimiter not followed by CRLF")
        head, separator, payload = chunk[2:].partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("part without a blank line after its headers")
        if not payload.endswith(b"\r\n"):
            raise ValueError("part body not followed by CRLF")
        headers = {}
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        parts.append(Part(headers, payload[:-2]))
    return parts
