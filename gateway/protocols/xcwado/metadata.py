"""Which answers are DICOM metadata, and the rewriter each gets (PS3.18 §8.7.3, F.2, F.3).

DICOM JSON (``application/dicom+json``, also plain ``application/json``) and DICOM XML
(``application/dicom+xml``, alone or as the parts of a ``multipart/related`` answer) carry
BulkDataURI and Retrieve URL values; every other answer passes through unchanged.
"""

from __future__ import annotations

import contextlib

from gateway.protocols.xcwado.border import Border
from gateway.protocols.xcwado.rewrite import PrefixRewriter
from gateway.protocols.xcwado.spelling import Syntax
from gateway.relay.multipart import MultipartError, boundary_of
from routing.media import MediaType, media_or_none

__all__ = ["is_rewritable", "metadata_rewriter"]

_JSON_TYPES = ("application/dicom+json", "application/json")
_XML_TYPES = ("application/dicom+xml", "application/xml", "text/xml")


def is_rewritable(content_type: str) -> bool:
    """True for DICOM JSON metadata and for (multipart) DICOM XML metadata."""
    return _syntax(media_or_none(content_type)) is not None


def metadata_rewriter(content_type: str, border: Border) -> PrefixRewriter | None:
    """The rewriter for an answer of ``content_type``, or None when it is not metadata
    (or unreadable: open_upstream refuses that answer before any rewriter is asked)."""
    media = media_or_none(content_type)
    if media is None or (syntax := _syntax(media)) is None:
        return None
    boundary = None
    if media.type == "multipart":
        with contextlib.suppress(MultipartError):
            boundary = boundary_of(content_type)
    return PrefixRewriter(border, syntax, boundary=boundary)


def _syntax(media: MediaType | None) -> Syntax | None:
    if media is None:
        return None
    if media.essence in _JSON_TYPES:
        return Syntax.JSON
    if media.essence in _XML_TYPES or (
        media.essence == "multipart/related"
        and any(value.lower() in _XML_TYPES for value in media.values("type"))
    ):
        return Syntax.XML
    return None
