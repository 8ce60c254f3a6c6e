"""The Body elements of RAD-69 / RAD-75 read and written: the
``iherad:RetrieveImagingDocumentSetRequest`` (digest §2.4) and the ITI-43
``xdsb:RetrieveDocumentSetResponse`` (digest §2.5). :mod:`.envelope` wraps them in SOAP.

Request, read: DocumentRequest and its children are matched by local name in the xds-b or
the xdsi-b namespace (IPF writes ``iherad:DocumentRequest``, digest §2.4, item 4); ids are
stripped of surrounding whitespace; a request that breaks a content rule of the schema or of
the Gazelle checks (no StudyRequest/SeriesRequest/DocumentRequest, an empty or repeated id, an
id over 256 characters, no or an empty TransferSyntaxUIDList: item 5) raises
:class:`InvalidRequest`, whose sentence names the element's position, never its text.
Request, written: documents regrouped into StudyRequest/SeriesRequest in first-seen order;
DocumentRequest in the namespace the upstream wants (item 29), its children in xds-b.

Response, read: leniently, to relay what peers write — a status outside the three known
values is kept as text, a missing DocumentResponse field as empty (for
:func:`.outcomes.missing_fields`); a Document is an ``xop:Include`` (its Content-ID) or
inline base64. What cannot be read raises :class:`AnswerUnreadable`. Written: schema order,
Document as an ``xop:Include`` or inline base64.

Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator

from lxml import etree

from gateway.protocols.xca.errors import AnswerUnreadable, InvalidRequest
from gateway.protocols.xca.model import (
    DocumentRequest,
    DocumentResponse,
    Namespace,
    RegistryError,
    RetrieveRequest,
    RetrieveResponse,
    Severity,
    Status,
)
from gateway.protocols.xca.mtom import content_id_from_href, href_for
from gateway.protocols.xca.xmlsafe import children, sub_element, text_of

__all__ = [
    "DOCUMENTS_PLACEHOLDER",
    "MAX_ID_LENGTH",
    "document_responses",
    "read_request",
    "read_response",
    "write_request",
    "write_response",
]

MAX_ID_LENGTH = 256
"""``rim:LongName``: the longest id the schemas allow."""

_XDSB = Namespace.XDSB.value
_IHERAD = Namespace.IHERAD.value
_RS = Namespace.RS.value
_XOP = Namespace.XOP.value
_IDS = frozenset({_XDSB, _IHERAD})  # digest §2.4: DocumentRequest in either namespace
_XDSB_ONLY = frozenset({_XDSB})
_RS_ONLY = frozenset({_RS})
_XOP_ONLY = frozenset({_XOP})
_KNOWN_STATUSES = frozenset(member.value for member in Status)


def read_request(element: etree._Element) -> RetrieveRequest:
    """The request a RetrieveImagingDocumentSetRequest element holds. Raises
    :class:`InvalidRequest` (module docstring)."""
    studies = children(element, "StudyRequest", _IDS)
    if not studies:
        raise InvalidRequest("The request has no StudyRequest.")
    documents: list[DocumentRequest] = []
    # A request names a few repositories and communities thousands of times: one string each.
    shared: dict[str, str] = {}
    for s_index, study in enumerate(studies, 1):
        where = f"StudyRequest {s_index}"
        study_uid = _checked_id(study.get("studyInstanceUID"), f"{where}: studyInstanceUID")
        series_list = children(study, "SeriesRequest", _IDS)
        if not series_list:
            raise InvalidRequest(f"{where} has no SeriesRequest.")
        for r_index, series in enumerate(series_list, 1):
            where = f"StudyRequest {s_index}, SeriesRequest {r_index}"
            series_uid = _checked_id(series.get("seriesInstanceUID"), f"{where}: seriesInstanceUID")
            requests = children(series, "DocumentRequest", _IDS)
            if not requests:
                raise InvalidRequest(f"{where} has no DocumentRequest.")
            for d_index, request in enumerate(requests, 1):
                place = f"{where}, DocumentRequest {d_index}"
                documents.append(
                    DocumentRequest(
                        study_uid=study_uid,
                        series_uid=series_uid,
                        home_community_id=_one_or_none(
                            shared, _optional_child_id(request, "HomeCommunityId", place)
                        ),
                        repository_id=_one(shared, _child_id(request, "RepositoryUniqueId", place)),
                        document_uid=_child_id(request, "DocumentUniqueId", place),
                    )
                )
    lists = children(element, "TransferSyntaxUIDList", _IDS)
    if len(lists) != 1:
        raise InvalidRequest("The request must hold exactly one TransferSyntaxUIDList.")
    entries = children(lists[0], "TransferSyntaxUID", _IDS)
    if not entries:
        raise InvalidRequest("The TransferSyntaxUIDList is empty.")
    syntaxes = tuple(
        _checked_id(entry.text, f"TransferSyntaxUID {index}")
        for index, entry in enumerate(entries, 1)
    )
    return RetrieveRequest(documents=tuple(documents), transfer_syntaxes=syntaxes)


def _checked_id(value: str | None, where: str) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidRequest(f"{where} is missing or empty.")
    if len(text) > MAX_ID_LENGTH:
        raise InvalidRequest(f"{where} is longer than {MAX_ID_LENGTH} characters.")
    return text


def _child_id(parent: etree._Element, local: str, where: str) -> str:
    found = children(parent, local, _IDS)
    if len(found) > 1:
        raise InvalidRequest(f"{where}: {local} is given more than once.")
    return _checked_id(found[0].text if found else None, f"{where}: {local}")


def _optional_child_id(parent: etree._Element, local: str, where: str) -> str | None:
    found = children(parent, local, _IDS)
    if not found or not text_of(found[0]):
        return None
    return _child_id(parent, local, where)


def read_response(element: etree._Element) -> RetrieveResponse:
    """The response a RetrieveDocumentSetResponse element holds. Raises
    :class:`AnswerUnreadable` when it has no RegistryResponse status, an xop:Include that is
    not a ``cid:`` URL, a Document with two values or inline text that is not base64."""
    registry = children(element, "RegistryResponse", _RS_ONLY)
    status = (registry[0].get("status") or "").strip() if len(registry) == 1 else ""
    if not status:
        raise AnswerUnreadable("the answer has no RegistryResponse status")
    errors = tuple(
        _registry_error(entry)
        for error_list in children(registry[0], "RegistryErrorList", _RS_ONLY)
        for entry in children(error_list, "RegistryError", _RS_ONLY)
    )
    shared: dict[str, str] = {}  # a few repositories and communities, often
    documents = tuple(
        _document_response(entry, shared)
        for entry in children(element, "DocumentResponse", _XDSB_ONLY)
    )
    return RetrieveResponse(
        status=Status(status) if status in _KNOWN_STATUSES else status,
        errors=errors,
        documents=documents,
    )


def _registry_error(entry: etree._Element) -> RegistryError:
    severity = entry.get("severity") or Severity.ERROR.value
    return RegistryError(
        code=entry.get("errorCode") or "",
        context=entry.get("codeContext") or "",
        location=entry.get("location"),
        severity=Severity.WARNING if severity.strip().endswith(":Warning") else Severity.ERROR,
    )


def _one(shared: dict[str, str], value: str) -> str:
    """``value``, or the equal string ``shared`` already holds (kept from then on)."""
    return shared.setdefault(value, value)


def _one_or_none(shared: dict[str, str], value: str | None) -> str | None:
    return None if value is None else _one(shared, value)


def _document_response(entry: etree._Element, shared: dict[str, str]) -> DocumentResponse:
    def field(local: str) -> str | None:
        found = children(entry, local, _XDSB_ONLY)
        return text_of(found[0]) if found else None

    content_id: str | None = None
    inline: bytes | None = None
    documents = children(entry, "Document", _XDSB_ONLY)
    if documents:
        includes = children(documents[0], "Include", _XOP_ONLY)
        if len(includes) > 1 or (includes and text_of(documents[0])):
            raise AnswerUnreadable("a Document holds more than one value")
        if includes:
            try:
                content_id = content_id_from_href(includes[0].get("href") or "")
            except ValueError as exc:
                raise AnswerUnreadable("an xop:Include href is not a cid: URL") from exc
        else:
            inline = _inline_bytes(documents[0].text or "")
    return DocumentResponse(
        home_community_id=_one_or_none(shared, field("HomeCommunityId") or None),
        repository_id=_one(shared, field("RepositoryUniqueId") or ""),
        document_uid=field("DocumentUniqueId") or "",
        mime_type=_one(shared, field("mimeType") or ""),
        content_id=content_id,
        inline=inline,
    )


def _inline_bytes(text: str) -> bytes:
    compact = "".join(text.split())
    try:
        return binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise AnswerUnreadable("a Document holds text that is not base64") from exc


def write_request(
    parent: etree._Element, request: RetrieveRequest, *, document_namespace: Namespace
) -> None:
    """Append a RetrieveImagingDocumentSetRequest for ``request`` to ``parent``."""
    element = etree.SubElement(
        parent,
        f"{{{_IHERAD}}}RetrieveImagingDocumentSetRequest",
        nsmap={"iherad": _IHERAD, "xdsb": _XDSB},
    )
    grouped: dict[str, dict[str, list[DocumentRequest]]] = {}
    for document in request.documents:
        series = grouped.setdefault(document.study_uid, {})
        series.setdefault(document.series_uid, []).append(document)
    for study_uid, series_map in grouped.items():
        study = sub_element(element, _IHERAD, "StudyRequest")
        study.set("studyInstanceUID", study_uid)
        for series_uid, documents in series_map.items():
            series = sub_element(study, _IHERAD, "SeriesRequest")
            series.set("seriesInstanceUID", series_uid)
            for document in documents:
                entry = sub_element(series, document_namespace.value, "DocumentRequest")
                if document.home_community_id is not None:
                    sub_element(entry, _XDSB, "HomeCommunityId", document.home_community_id)
                sub_element(entry, _XDSB, "RepositoryUniqueId", document.repository_id)
                sub_element(entry, _XDSB, "DocumentUniqueId", document.document_uid)
    syntaxes = sub_element(element, _IHERAD, "TransferSyntaxUIDList")
    for syntax in request.transfer_syntaxes:
        sub_element(syntaxes, _IHERAD, "TransferSyntaxUID", syntax)


DOCUMENTS_PLACEHOLDER = "mado-gateway:documents"
"""The comment :func:`write_response` leaves where the DocumentResponses go (see there)."""


def write_response(parent: etree._Element, response: RetrieveResponse) -> None:
    """Append a RetrieveDocumentSetResponse for ``response`` to ``parent``, its
    RegistryResponse written and, where its DocumentResponses go, the comment
    :data:`DOCUMENTS_PLACEHOLDER`: the caller serialises the tree and puts
    :func:`document_responses` there. Thousands of DocumentResponses as lxml elements would
    cost about 2 KiB each at once (4 MiB for 2,000); written one by one they cost their text.
    """
    element = etree.SubElement(
        parent,
        f"{{{_XDSB}}}RetrieveDocumentSetResponse",
        nsmap={"xdsb": _XDSB, "rs": _RS, "xop": _XOP},
    )
    registry = sub_element(element, _RS, "RegistryResponse")
    registry.set("status", str(response.status))
    if response.errors:
        error_list = sub_element(registry, _RS, "RegistryErrorList")
        for error in response.errors:
            entry = sub_element(error_list, _RS, "RegistryError")
            entry.set("errorCode", error.code)
            entry.set("codeContext", error.context)
            if error.location is not None:
                entry.set("location", error.location)
            entry.set("severity", error.severity.value)
    element.append(etree.Comment(DOCUMENTS_PLACEHOLDER))


def document_responses(documents: Iterable[DocumentResponse]) -> Iterator[bytes]:
    """The DocumentResponse elements, in schema order, as UTF-8 text for the place
    :func:`write_response` marked (prefixes ``xdsb`` and ``xop`` are declared there).
    Raises ValueError for a DocumentResponse with neither ``content_id`` nor ``inline``, or
    text XML cannot hold."""
    for document in documents:
        parts = ["<xdsb:DocumentResponse>"]
        if document.home_community_id is not None:
            parts.append(_text_element("HomeCommunityId", document.home_community_id))
        parts.append(_text_element("RepositoryUniqueId", document.repository_id))
        parts.append(_text_element("DocumentUniqueId", document.document_uid))
        parts.append(_text_element("mimeType", document.mime_type))
        if document.content_id is not None:
            href = _xml_text(href_for(document.content_id))
            parts.append(f'<xdsb:Document><xop:Include href="{_quoted(href)}"/></xdsb:Document>')
        elif document.inline is not None:
            encoded = base64.b64encode(document.inline).decode("ascii")
            parts.append(f"<xdsb:Document>{encoded}</xdsb:Document>")
        else:
            raise ValueError("a DocumentResponse needs a content_id or inline bytes")
        parts.append("</xdsb:DocumentResponse>")
        yield "".join(parts).encode("utf-8")


# XML 1.0 §2.2: the characters a document may hold (no C0 control but TAB, LF, CR; no
# surrogates, U+FFFE or U+FFFF) — lxml refuses the others with ValueError, and so do we.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: str) -> str:
    if _NOT_XML.search(value):
        raise ValueError("All strings must be XML compatible: no control characters")
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quoted(escaped: str) -> str:
    """Text already :func:`_xml_text`-escaped, made safe inside a double-quoted attribute
    (whitespace as character references, so a reader's normalisation keeps it)."""
    return (
        escaped.replace('"', "&quot;")
        .replace("\t", "&#9;")
        .replace("\n", "&#10;")
        .replace("\r", "&#13;")
    )


def _text_element(local: str, value: str) -> str:
    text = _xml_text(value).replace("\r", "&#13;")  # a bare CR would read back as LF
    return f"<xdsb:{local}>{text}</xdsb:{local}>"
