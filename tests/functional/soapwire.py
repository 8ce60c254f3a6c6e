"""RAD-69 / RAD-75 messages written by hand, as an independent consumer (or a canned source)
would write them: the SOAP 1.2 envelopes with lxml and their MTOM/XOP packages.

Deliberately independent of the gateway's SOAP and MTOM modules: the constants below are
restated from the standards (xcai-digest.md §2.2, §2.3, §2.6), not imported, so that a
mistake there cannot hide behind the same mistake here (``test_soapclient`` checks that both
agree). Pure: no I/O.

Wire shape (xcai-digest.md §2.4, §2.5, §2.8; ITI TF-2 Appendix V for the addressing headers):

* request body ``iherad:RetrieveImagingDocumentSetRequest`` → StudyRequest → SeriesRequest →
  DocumentRequest (in ``document_namespace``, xds-b by default) → HomeCommunityId?,
  RepositoryUniqueId, DocumentUniqueId; then TransferSyntaxUIDList;
* response body ``xdsb:RetrieveDocumentSetResponse`` → ``rs:RegistryResponse@status``
  (RegistryErrorList?) then DocumentResponse*, each Document an ``xop:Include`` or base64 text;
* MTOM: ``multipart/related; type="application/xop+xml"; start; start-info``, the root part
  ``application/xop+xml; type="application/soap+xml"``, binary parts ``Content-ID: <cid>``
  named by ``cid:`` URLs (RFC 2392, percent-encoded).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

from lxml import etree

__all__ = [
    "ANONYMOUS",
    "ERROR",
    "EXPLICIT_LE",
    "FAILURE",
    "IHERAD",
    "PARTIAL_SUCCESS",
    "RAD69",
    "RAD69_RESPONSE",
    "RAD75",
    "RAD75_RESPONSE",
    "RS",
    "SOAP12",
    "SUCCESS",
    "WARNING",
    "WSA",
    "XDSB",
    "XOP",
    "Doc",
    "Part",
    "RegistryErrorRow",
    "Returned",
    "cid_url",
    "mtom_package",
    "new_message_id",
    "plain_content_type",
    "rad_request",
    "rad_response",
]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
XOP = "http://www.w3.org/2004/08/xop/include"
XDSB = "urn:ihe:iti:xds-b:2007"
IHERAD = "urn:ihe:rad:xdsi-b:2009"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"

RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
RAD69_RESPONSE = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
RAD75 = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"
RAD75_RESPONSE = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse"

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"

EXPLICIT_LE = "1.2.840.10008.1.2.1"

_NSMAP = {"s": SOAP12, "a": WSA}
_ROOT_TYPE = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'


@dataclass(frozen=True, slots=True, kw_only=True)
class Doc:
    """One requested document with the study and series it is listed under. Written as is:
    empty strings stay empty (checklist 5 sends them on purpose)."""

    study: str
    series: str
    document_uid: str
    repository_id: str
    home_community_id: str | None = None


class RegistryErrorRow(NamedTuple):
    """One ``rs:RegistryError``; ``severity`` with the schema default applied when absent."""

    code: str
    context: str
    location: str | None
    severity: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Returned:
    """One DocumentResponse a canned answer carries: as an MTOM part named ``content_id``, or
    as inline base64 text when ``content_id`` is None."""

    home_community_id: str | None
    repository_id: str
    document_uid: str
    content: bytes
    content_id: str | None = None
    mime_type: str = "application/dicom"


@dataclass(frozen=True, slots=True, kw_only=True)
class Part:
    """One MIME part of a package besides the root. ``transfer_encoding`` None writes no
    Content-Transfer-Encoding header; ``"base64"`` writes ``content`` base64-encoded."""

    content_id: str  # without <>
    content: bytes
    content_type: str = "application/dicom"
    transfer_encoding: str | None = "binary"


def new_message_id() -> str:
    """A fresh ``urn:uuid:`` MessageID, to pass to :func:`rad_request` and find again in
    the answer's ``wsa:RelatesTo``."""
    return f"urn:uuid:{uuid.uuid4()}"


def cid_url(content_id: str) -> str:
    """The ``cid:`` URL naming a part (RFC 2392: the Content-ID without ``<>``, %-encoded)."""
    return "cid:" + quote(content_id, safe="@.-_")


def _header(parent: Any, name: str, text: str, *, must_understand: bool = False) -> Any:
    element = etree.SubElement(parent, f"{{{WSA}}}{name}")
    element.text = text
    if must_understand:
        element.set(f"{{{SOAP12}}}mustUnderstand", "true")
    return element


def _envelope(
    *,
    action: str,
    message_id: str | None = None,
    to: str | None = None,
    reply_to: str | None = None,
    relates_to: str | None = None,
    must_understand: bool = True,
) -> tuple[Any, Any]:
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap=_NSMAP)
    header = etree.SubElement(envelope, f"{{{SOAP12}}}Header")
    _header(header, "Action", action, must_understand=must_understand)
    if message_id is not None:
        _header(header, "MessageID", message_id)
    if reply_to is not None:
        _header(etree.SubElement(header, f"{{{WSA}}}ReplyTo"), "Address", reply_to)
    if to is not None:
        _header(header, "To", to, must_understand=must_understand)
    if relates_to is not None:
        _header(header, "RelatesTo", relates_to)
    return envelope, etree.SubElement(envelope, f"{{{SOAP12}}}Body")


def _text(parent: Any, tag: str, text: str) -> None:
    etree.SubElement(parent, tag).text = text


def rad_request(
    documents: Sequence[Doc],
    transfer_syntaxes: Sequence[str] | None,
    *,
    action: str,
    to: str,
    message_id: str | None = None,
    document_namespace: str = XDSB,
    reply_to: str | None = ANONYMOUS,
    must_understand: bool = True,
) -> bytes:
    """A RetrieveImagingDocumentSet envelope (RAD-69 or RAD-75: the body is the same).

    Documents are grouped into StudyRequest/SeriesRequest in order of first appearance.
    ``transfer_syntaxes`` None leaves TransferSyntaxUIDList out; an empty sequence writes it
    empty (both invalid, for checklist 5). ``message_id`` None draws a fresh ``urn:uuid:``;
    ``reply_to`` None leaves ReplyTo out. Action and To carry ``mustUnderstand="true"`` unless
    ``must_understand`` is false. Returns UTF-8 bytes with an XML declaration.
    """
    envelope, body = _envelope(
        action=action,
        message_id=message_id or new_message_id(),
        to=to,
        reply_to=reply_to,
        must_understand=must_understand,
    )
    request = etree.SubElement(
        body,
        f"{{{IHERAD}}}RetrieveImagingDocumentSetRequest",
        nsmap={"iherad": IHERAD, "xdsb": XDSB},
    )
    studies: dict[str, dict[str, list[Doc]]] = {}
    for doc in documents:
        studies.setdefault(doc.study, {}).setdefault(doc.series, []).append(doc)
    for study, series_map in studies.items():
        study_element = etree.SubElement(request, f"{{{IHERAD}}}StudyRequest")
        study_element.set("studyInstanceUID", study)
        for series, docs in series_map.items():
            series_element = etree.SubElement(study_element, f"{{{IHERAD}}}SeriesRequest")
            series_element.set("seriesInstanceUID", series)
            for doc in docs:
                item = etree.SubElement(series_element, f"{{{document_namespace}}}DocumentRequest")
                if doc.home_community_id is not None:
                    _text(item, f"{{{XDSB}}}HomeCommunityId", doc.home_community_id)
                _text(item, f"{{{XDSB}}}RepositoryUniqueId", doc.repository_id)
                _text(item, f"{{{XDSB}}}DocumentUniqueId", doc.document_uid)
    if transfer_syntaxes is not None:
        syntaxes = etree.SubElement(request, f"{{{IHERAD}}}TransferSyntaxUIDList")
        for syntax in transfer_syntaxes:
            _text(syntaxes, f"{{{IHERAD}}}TransferSyntaxUID", syntax)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def rad_response(
    *,
    status: str,
    documents: Sequence[Returned] = (),
    errors: Sequence[RegistryErrorRow] = (),
    action: str = RAD69_RESPONSE,
    relates_to: str | None = None,
) -> bytes:
    """A RetrieveDocumentSetResponse envelope, as a canned source would answer: each document
    as ``xop:Include`` of its ``content_id`` or, without one, as inline base64 text."""
    envelope, body = _envelope(action=action, relates_to=relates_to, must_understand=False)
    response = etree.SubElement(
        body, f"{{{XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": XDSB, "rs": RS}
    )
    registry = etree.SubElement(response, f"{{{RS}}}RegistryResponse")
    registry.set("status", status)
    if errors:
        error_list = etree.SubElement(registry, f"{{{RS}}}RegistryErrorList")
        for row in errors:
            error = etree.SubElement(error_list, f"{{{RS}}}RegistryError")
            error.set("errorCode", row.code)
            error.set("codeContext", row.context)
            if row.location is not None:
                error.set("location", row.location)
            error.set("severity", row.severity)
    for doc in documents:
        item = etree.SubElement(response, f"{{{XDSB}}}DocumentResponse")
        if doc.home_community_id is not None:
            _text(item, f"{{{XDSB}}}HomeCommunityId", doc.home_community_id)
        _text(item, f"{{{XDSB}}}RepositoryUniqueId", doc.repository_id)
        _text(item, f"{{{XDSB}}}DocumentUniqueId", doc.document_uid)
        _text(item, f"{{{XDSB}}}mimeType", doc.mime_type)
        document = etree.SubElement(item, f"{{{XDSB}}}Document")
        if doc.content_id is None:
            document.text = base64.b64encode(doc.content).decode("ascii")
        else:
            include = etree.SubElement(document, f"{{{XOP}}}Include", nsmap={"xop": XOP})
            include.set("href", cid_url(doc.content_id))
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def plain_content_type(action: str | None) -> str:
    """The Content-Type of a plain (non-MTOM) SOAP 1.2 message."""
    tail = f'; action="{action}"' if action else ""
    return f"application/soap+xml; charset=UTF-8{tail}"


def mtom_package(
    envelope: bytes,
    *,
    action: str | None,
    parts: Sequence[Part] = (),
    root_index: int = 0,
    root_id: str = "root.message@mado.test",
    boundary: str | None = None,
    start: bool = True,
    close: bool = True,
) -> tuple[str, bytes]:
    """``(Content-Type, body)`` of an MTOM/XOP package (xcai-digest.md §2.8).

    The root part goes at ``root_index`` among ``parts`` (0: first, as everybody expects;
    ``len(parts)``: last, legal when ``start`` names it). ``start`` False leaves the ``start``
    parameter out; ``close`` False leaves the closing delimiter out (a truncated package);
    ``action`` None leaves the ``action`` parameter out (responses carry none).
    """
    boundary = boundary or f"MIMEBoundary_{uuid.uuid4().hex}"
    root = Part(content_id=root_id, content=envelope, content_type=_ROOT_TYPE)
    ordered = list(parts)
    ordered.insert(root_index, root)
    chunks: list[bytes] = []
    for part in ordered:
        content = part.content
        lines = [f"--{boundary}", f"Content-Type: {part.content_type}"]
        if part.transfer_encoding is not None:
            lines.append(f"Content-Transfer-Encoding: {part.transfer_encoding}")
            if part.transfer_encoding.lower() == "base64":
                text = base64.b64encode(content)
                content = b"\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))
        lines.append(f"Content-ID: <{part.content_id}>")
        chunks.append("\r\n".join(lines).encode("ascii") + b"\r\n\r\n" + content + b"\r\n")
    if close:
        chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    params = [
        "multipart/related",
        f'boundary="{boundary}"',
        'type="application/xop+xml"',
    ]
    if start:
        params.append(f'start="<{root_id}>"')
    params.append('start-info="application/soap+xml"')
    if action:
        params.append(f'action="{action}"')
    return "; ".join(params), b"".join(chunks)
