"""RAD-69 / RAD-75 answers as an independent consumer sees them: :class:`SoapAnswer` and
how it is filled from the root part and the other MIME parts, whichever reader
(:mod:`tests.functional.soapreaders`) split them.

:func:`assemble_answer` parses the envelope (lxml, entities and network off) and fills the
``wsa:Action`` / ``wsa:RelatesTo``, the RegistryResponse status and errors, the returned
documents with their bytes resolved from ``xop:Include`` cids (the ``cid:`` URL
percent-decoded and compared with the Content-ID without its ``<>``, RFC 2392 §2) or inline
base64, a SOAP 1.2 Fault when one came back, and the XOP bookkeeping of xcai-digest.md §9
item 7 (unreferenced parts, unresolved cids). Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import unquote

from lxml import etree

from tests.functional.soapwire import ERROR, RS, SOAP12, WSA, XDSB, XOP, RegistryErrorRow

__all__ = [
    "AnswerPart",
    "Fault",
    "PartDigest",
    "ReturnedDocument",
    "SoapAnswer",
    "assemble_answer",
    "content_id_of",
    "content_type_params",
    "part_digest",
    "root_index_of",
]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


class ReturnedDocument(NamedTuple):
    """One DocumentResponse. ``content`` is None when its cid resolved to no single part, and
    for answers read from a file (see :attr:`SoapAnswer.digests`)."""

    home_community_id: str | None
    repository_id: str
    document_uid: str
    mime_type: str
    content: bytes | None


class Fault(NamedTuple):
    """A SOAP 1.2 Fault: code and subcode in Clark notation (``{namespace}local``)."""

    code: str
    subcode: str | None
    reason: str


class PartDigest(NamedTuple):
    length: int
    sha256: str  # hex


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerPart:
    """One MIME part as it came, in wire order. ``content`` is the decoded bytes (base64
    transfer encoding undone), None for answers read from a file."""

    content_id: str  # as in its Content-ID header, without <>; "" when it had none
    content_type: str | None
    transfer_encoding: str | None
    content: bytes | None
    digest: PartDigest


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapAnswer:
    """What came back. Lists are empty (and ``envelope`` None) when the body was not a SOAP
    envelope; ``problem`` then says why, in the kit's own words."""

    http_status: int
    content_type: str
    body: bytes | None  # the raw HTTP body; None for file answers
    mtom: bool  # multipart/related
    parts: tuple[AnswerPart, ...]  # every part, the root included; () when not MTOM
    root_index: int | None  # where the root part was among ``parts``
    closing_delimiter: bool  # the package ended with its closing delimiter (False if not MTOM)
    envelope: Any  # lxml root element, or None
    action: str | None
    relates_to: str | None
    status: str | None
    errors: tuple[RegistryErrorRow, ...]
    documents: tuple[ReturnedDocument, ...]
    document_cids: tuple[str | None, ...]  # per document: the cid it named; None when inline
    digests: tuple[PartDigest | None, ...]  # per document: its bytes' length and SHA-256
    fault: Fault | None
    unreferenced_parts: tuple[str, ...]  # non-root parts no xop:Include names
    unresolved_cids: tuple[str, ...]  # cids naming no part, or more than one
    multiply_referenced: tuple[str, ...]  # cids named by more than one xop:Include
    problem: str | None

    @property
    def body_child(self) -> Any:
        """The first element inside ``soap:Body`` (for schema validation), or None."""
        if self.envelope is None:
            return None
        body = self.envelope.find(f"{{{SOAP12}}}Body")
        return None if body is None or len(body) == 0 else body[0]

    def document(self, document_uid: str) -> ReturnedDocument:
        """The one returned document with this DocumentUniqueId (AssertionError otherwise)."""
        found = [doc for doc in self.documents if doc.document_uid == document_uid]
        assert len(found) == 1, f"{len(found)} DocumentResponses for {document_uid}"
        return found[0]


def content_type_params(content_type: str) -> tuple[str, dict[str, str]]:
    """``(media type in lower case, {parameter name in lower case: unquoted value})``."""
    message = email.message.Message()
    message["Content-Type"] = content_type
    params = message.get_params() or []
    return message.get_content_type(), {name.lower(): str(value) for name, value in params[1:]}


def content_id_of(text: str | None) -> str:
    """A Content-ID (or ``start``) without its ``<>``; not percent-decoded (RFC 2392: only
    the ``cid:`` URL is)."""
    value = (text or "").strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value


def _href_cid(href: object) -> str:
    """The Content-ID a ``cid:`` URL names (RFC 2392 §2: prefix off, %-escapes decoded)."""
    text = str(href or "").strip()
    if text[:4].lower() == "cid:":
        text = text[4:]
    return unquote(text)


def part_digest(content: bytes) -> PartDigest:
    """Length and SHA-256 of ``content``."""
    return PartDigest(len(content), hashlib.sha256(content).hexdigest())


def root_index_of(parts: Sequence[AnswerPart], params: dict[str, str]) -> int | None:
    """The root: the part ``start`` names, else the first (RFC 2387 §3.2)."""
    if not parts:
        return None
    if "start" not in params:
        return 0
    wanted = content_id_of(params["start"])
    return next((i for i, part in enumerate(parts) if part.content_id == wanted), None)


def assemble_answer(
    http_status: int,
    content_type: str,
    body: bytes | None,
    *,
    root: bytes | None,
    parts: Sequence[AnswerPart],
    params: dict[str, str] | None,
    closed: bool = False,
) -> SoapAnswer:
    """The answer made of a root part and the other ``parts`` (wire order).

    ``params`` are the Content-Type parameters of an MTOM answer, None for plain SOAP (then
    ``root`` is the whole body). ``root`` None takes the root's bytes from ``parts``. Never
    raises for a malformed answer: what could not be read stays empty and ``problem`` says
    why.
    """
    root_at = None
    if params is not None:
        root_at = root_index_of(parts, params)
        if root_at is not None and root is None:
            root = parts[root_at].content
    reading = _Envelope(root, parts, root_at, mtom=params is not None)
    return SoapAnswer(
        http_status=http_status,
        content_type=content_type,
        body=body,
        mtom=params is not None,
        parts=tuple(parts),
        root_index=root_at,
        closing_delimiter=closed,
        envelope=reading.envelope,
        action=reading.header_text("Action"),
        relates_to=reading.header_text("RelatesTo"),
        status=reading.status,
        errors=tuple(reading.errors),
        documents=tuple(reading.documents),
        document_cids=tuple(reading.document_cids),
        digests=tuple(reading.digests),
        fault=reading.fault,
        unreferenced_parts=tuple(reading.unreferenced),
        unresolved_cids=tuple(reading.unresolved),
        multiply_referenced=tuple(reading.multiply_referenced),
        problem=reading.problem,
    )


class _Envelope:
    """One pass over a root part: every field of :class:`SoapAnswer` it determines."""

    def __init__(
        self, root: bytes | None, parts: Sequence[AnswerPart], root_at: int | None, *, mtom: bool
    ) -> None:
        self.envelope: Any = None
        self.status: str | None = None
        self.errors: list[RegistryErrorRow] = []
        self.documents: list[ReturnedDocument] = []
        self.document_cids: list[str | None] = []
        self.digests: list[PartDigest | None] = []
        self.fault: Fault | None = None
        self.unreferenced: list[str] = []
        self.unresolved: list[str] = []
        self.multiply_referenced: list[str] = []
        self.problem: str | None = None
        self.parts = [part for i, part in enumerate(parts) if i != root_at]
        if mtom and root_at is None:
            self.problem = "no root part (start names no part, or no part at all)"
            return
        try:
            self.envelope = etree.fromstring(root or b"", _PARSER)
        except etree.XMLSyntaxError:
            self.problem = "the root part is not well-formed XML"
            return
        if self.envelope.tag != f"{{{SOAP12}}}Envelope":
            self.problem = f"the root element is {self.envelope.tag}, not a SOAP 1.2 Envelope"
            return
        self._references()
        body = self.envelope.find(f"{{{SOAP12}}}Body")
        child = None if body is None or len(body) == 0 else body[0]
        if child is not None and child.tag == f"{{{SOAP12}}}Fault":
            self.fault = _fault(child)
        elif child is not None and child.tag == f"{{{XDSB}}}RetrieveDocumentSetResponse":
            self._response(child)
        else:
            self.problem = "the Body holds neither a Fault nor a RetrieveDocumentSetResponse"

    def header_text(self, name: str) -> str | None:
        if self.envelope is None:
            return None
        element = self.envelope.find(f"{{{SOAP12}}}Header/{{{WSA}}}{name}")
        return None if element is None else (element.text or "").strip()

    def _references(self) -> None:
        hrefs = [
            _href_cid(include.get("href")) for include in self.envelope.iter(f"{{{XOP}}}Include")
        ]
        named = Counter(part.content_id for part in self.parts)
        referenced = Counter(hrefs)
        self.unresolved = [cid for cid in referenced if named[cid] != 1]
        self.multiply_referenced = [cid for cid, count in referenced.items() if count > 1]
        self.unreferenced = [
            part.content_id for part in self.parts if not referenced[part.content_id]
        ]

    def _response(self, response: Any) -> None:
        registry = response.find(f"{{{RS}}}RegistryResponse")
        self.status = None if registry is None else registry.get("status")
        if registry is not None:
            for error in registry.iterfind(f"{{{RS}}}RegistryErrorList/{{{RS}}}RegistryError"):
                self.errors.append(
                    RegistryErrorRow(
                        code=str(error.get("errorCode", "")),
                        context=str(error.get("codeContext", "")),
                        location=error.get("location"),
                        severity=str(error.get("severity", ERROR)),
                    )
                )
        for item in response.iterfind(f"{{{XDSB}}}DocumentResponse"):
            content, cid, digest = self._content(item.find(f"{{{XDSB}}}Document"))
            self.documents.append(
                ReturnedDocument(
                    home_community_id=_child_text(item, "HomeCommunityId"),
                    repository_id=_child_text(item, "RepositoryUniqueId") or "",
                    document_uid=_child_text(item, "DocumentUniqueId") or "",
                    mime_type=_child_text(item, "mimeType") or "",
                    content=content,
                )
            )
            self.document_cids.append(cid)
            self.digests.append(digest)

    def _content(self, document: Any) -> tuple[bytes | None, str | None, PartDigest | None]:
        if document is None:
            return None, None, None
        include = document.find(f"{{{XOP}}}Include")
        if include is None:
            try:
                content = base64.b64decode("".join((document.text or "").split()), validate=True)
            except binascii.Error:
                self.problem = "a Document holds text that is not base64"
                return None, None, None
            return content, None, part_digest(content)
        cid = _href_cid(include.get("href"))
        matches = [part for part in self.parts if part.content_id == cid]
        if len(matches) != 1:
            return None, cid, None
        return matches[0].content, cid, matches[0].digest


def _child_text(item: Any, name: str) -> str | None:
    element = item.find(f"{{{XDSB}}}{name}")
    return None if element is None else (element.text or "").strip()


def _qname(element: Any) -> str | None:
    """A QName-valued element's text in Clark notation, its prefix resolved where it stands."""
    if element is None:
        return None
    text = (element.text or "").strip()
    prefix, _, local = text.rpartition(":")
    namespace = element.nsmap.get(prefix or None)
    return f"{{{namespace}}}{local}" if namespace else local


def _fault(fault: Any) -> Fault:
    ns = f"{{{SOAP12}}}"
    reason = fault.find(f"{ns}Reason/{ns}Text")
    return Fault(
        code=_qname(fault.find(f"{ns}Code/{ns}Value")) or "",
        subcode=_qname(fault.find(f"{ns}Code/{ns}Subcode/{ns}Value")),
        reason="" if reason is None else (reason.text or "").strip(),
    )
