"""Streaming replacement of one byte string by another, for metadata URLs.

A source's metadata names its own address in BulkDataURI and Retrieve URL values
(``http://pacs:8042/dicom-web/studies/…/bulk/7fe00010``). A consumer across the border cannot
reach that address, so the gateway rewrites the source's base URL to its own public URL for
the same resource, chunk by chunk, without holding the body. A match split across two chunks
is found because the last ``len(needle) - 1`` bytes of a chunk wait for the next one.

Only JSON and XML metadata are rewritten (:func:`is_rewritable`); DICOM instances never are.
"""

from __future__ import annotations

__all__ = ["PrefixRewriter", "is_rewritable"]

_REWRITABLE_TYPES = ("application/dicom+json", "application/json")


def is_rewritable(content_type: str) -> bool:
    """True for DICOM JSON metadata and for multipart DICOM XML metadata."""
    media = content_type.partition(";")[0].strip().lower()
    if media in _REWRITABLE_TYPES:
        return True
    return media == "multipart/related" and "application/dicom+xml" in content_type.lower()


class PrefixRewriter:
    """Replace every ``needle`` with ``replacement`` across a stream of chunks.

    The output of :meth:`feed` calls followed by :meth:`flush` equals
    ``b"".join(chunks).replace(needle, replacement)``; memory held is at most
    ``len(needle) - 1`` bytes between calls.
    """

    __slots__ = ("_carry", "_keep", "_needle", "_replacement")

    def __init__(self, needle: bytes, replacement: bytes) -> None:
        if not needle:
            raise ValueError("needle must not be empty")
        self._needle = needle
        self._replacement = replacement
        self._keep = len(needle) - 1
        self._carry = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        needle, replacement = self._needle, self._replacement
        # Every match that starts before `cut` lies wholly inside `data`; one starting at or
        # after it may still be completed by the next chunk, so those bytes are carried over.
        cut = len(data) - self._keep
        pieces = []
        position = 0
        while True:
            found = data.find(needle, position)
            if found < 0:
                break
            pieces.append(data[position:found])
            pieces.append(replacement)
            position = found + len(needle)
        end = max(position, cut)
        pieces.append(data[position:end])
        self._carry = data[end:]
        return b"".join(pieces)

    def flush(self) -> bytes:
        rest, self._carry = self._carry, b""
        return rest
