"""SOAP 1.2 envelopes of RAD-69 / RAD-75 read and written (digest §2.1 to §2.5): the SOAP
frame, the WS-Addressing 1.0 headers and the faults; :mod:`.bodies` reads and writes what the
Body holds.

Reading goes through :func:`.xmlsafe.read_xml` (DTDs, entities and XInclude refused before
anything is expanded; no network). Writing serialises UTF-8 with an XML declaration.

* :func:`parse_request` — a request this gateway answers. WS-Addressing is required:
  ``wsa:Action`` (one of ``actions``; routing is on it, never on the HTTP ``action``
  parameter, digest §2.1) and ``wsa:MessageID`` (a reply relates to it, WS-Addressing 1.0
  Core §3.4); each header at most once; only the anonymous reply address (no asynchronous
  exchange, digest §2.10).
* :func:`parse_response` — a peer's answer; every failure is :class:`AnswerUnreadable`
  (:class:`PeerFault` for a SOAP Fault), headers read leniently (the first of each).
* :func:`build_request`, :func:`build_response`, :func:`build_failure` — the messages this
  gateway sends (their Body elements validate against the XDS-I.b and XDS.b schemas);
  :func:`build_fault` — the one place a :class:`SoapFault` becomes wire bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection

from lxml import etree

from gateway.protocols.xca.bodies import (
    DOCUMENTS_PLACEHOLDER,
    document_responses,
    read_request,
    read_response,
    write_request,
    write_response,
)
from gateway.protocols.xca.errors import (
    ActionNotSupported,
    AddressingHeaderRequired,
    AnswerUnreadable,
    AsyncNotSupported,
    InvalidAddressingHeader,
    InvalidRequest,
    MalformedMessage,
    PeerFault,
    SoapFault,
)
from gateway.protocols.xca.model import (
    Action,
    Addressing,
    Namespace,
    RegistryError,
    RetrieveRequest,
    RetrieveResponse,
    Status,
)
from gateway.protocols.xca.xmlsafe import (
    children,
    envelope_parts,
    local_name,
    read_xml,
    single_child,
    sub_element,
    text_of,
)

__all__ = [
    "ANONYMOUS",
    "FAULT_ACTION",
    "build_failure",
    "build_fault",
    "build_request",
    "build_response",
    "new_message_id",
    "parse_request",
    "parse_response",
]

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
FAULT_ACTION = "http://www.w3.org/2005/08/addressing/fault"

_SOAP = Namespace.SOAP.value
_WSA = Namespace.WSA.value
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_MUST_UNDERSTAND = f"{{{_SOAP}}}mustUnderstand"
_WSA_ONLY = frozenset({_WSA})
_SOAP_ONLY = frozenset({_SOAP})
_WSA_HEADERS = ("Action", "MessageID", "To", "RelatesTo", "ReplyTo", "FaultTo")
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_DEFAULT_ACTIONS = (Action.RAD_69.value, Action.RAD_75.value)
_REQUEST_ELEMENT = (Namespace.IHERAD.value, "RetrieveImagingDocumentSetRequest")
_RESPONSE_ELEMENT = (Namespace.XDSB.value, "RetrieveDocumentSetResponse")


def new_message_id() -> str:
    """A fresh ``wsa:MessageID`` (``urn:uuid:`` form, digest §2.2)."""
    return f"urn:uuid:{uuid.uuid4()}"


def parse_request(
    xml: bytes, *, max_bytes: int, actions: Collection[str] = _DEFAULT_ACTIONS
) -> tuple[Addressing, RetrieveRequest]:
    """The addressing headers and the request of one RAD-69/RAD-75 envelope.

    Checks in order: size (:class:`EnvelopeTooLarge`), forbidden XML (:class:`ForbiddenXml`),
    well-formedness and the Envelope (:class:`MalformedMessage`, :class:`VersionMismatch`),
    a header given twice (:class:`InvalidAddressingHeader`), ``wsa:Action`` present
    (:class:`AddressingHeaderRequired`) and in ``actions`` (:class:`ActionNotSupported`),
    ``wsa:MessageID`` present, ReplyTo/FaultTo anonymous (:class:`AsyncNotSupported`), the
    Body's element (:class:`MalformedMessage`), then the content rules
    (:class:`InvalidRequest`, see :func:`.bodies.read_request`, carrying the headers read).
    """
    header, body = envelope_parts(read_xml(xml, max_bytes=max_bytes))
    found = _wsa_headers(header, strict=True)
    action = found.get("Action")
    if not action:
        raise AddressingHeaderRequired(detail="wsa:Action")
    if action not in actions:
        raise ActionNotSupported(detail=action)
    message_id = found.get("MessageID")
    if not message_id:
        raise AddressingHeaderRequired(detail="wsa:MessageID")
    for name in ("ReplyTo", "FaultTo"):
        if found.get(name, ANONYMOUS) != ANONYMOUS:
            raise AsyncNotSupported(detail=f"wsa:{name}")
    addressing = Addressing(
        action=action,
        message_id=message_id,
        to=found.get("To"),
        reply_to=found.get("ReplyTo"),
        relates_to=found.get("RelatesTo"),
    )
    element = single_child(body)
    if element is None or local_name(element) != _REQUEST_ELEMENT:
        raise MalformedMessage("The SOAP Body does not hold a RetrieveImagingDocumentSetRequest.")
    try:
        return addressing, read_request(element)
    except InvalidRequest as exc:
        exc.addressing = addressing  # the Failure answering it relates to this MessageID
        raise


def _wsa_headers(header: etree._Element | None, *, strict: bool) -> dict[str, str]:
    """Text of each WS-Addressing header (ReplyTo/FaultTo: their Address). ``strict``: a
    header given twice raises :class:`InvalidAddressingHeader`; else the first counts."""
    found: dict[str, str] = {}
    if header is None:
        return found
    for name in _WSA_HEADERS:
        elements = children(header, name, _WSA_ONLY)
        if not elements:
            continue
        if len(elements) > 1 and strict:
            raise InvalidAddressingHeader(detail=f"wsa:{name}")
        if name in ("ReplyTo", "FaultTo"):
            addresses = children(elements[0], "Address", _WSA_ONLY)
            found[name] = text_of(addresses[0]) if addresses else ""
        else:
            found[name] = text_of(elements[0])
    return found


def parse_response(xml: bytes, *, max_bytes: int) -> tuple[Addressing, RetrieveResponse]:
    """The addressing headers and the RetrieveDocumentSetResponse of a peer's envelope.

    Raises :class:`PeerFault` when the Body holds a SOAP Fault, :class:`AnswerUnreadable`
    for anything else that cannot be read (size, forbidden XML, not a SOAP 1.2 Envelope,
    another Body element, and what :func:`.bodies.read_response` refuses).
    """
    try:
        header, body = envelope_parts(read_xml(xml, max_bytes=max_bytes))
    except SoapFault as exc:
        raise AnswerUnreadable(f"the answer is unreadable: {exc.reason}") from exc
    found = _wsa_headers(header, strict=False)
    addressing = Addressing(
        action=found.get("Action", ""),
        message_id=found.get("MessageID"),
        to=found.get("To"),
        relates_to=found.get("RelatesTo"),
    )
    element = single_child(body)
    if element is not None and local_name(element) == (_SOAP, "Fault"):
        raise _peer_fault(element)
    if element is None or local_name(element) != _RESPONSE_ELEMENT:
        raise AnswerUnreadable("the answer's Body holds no RetrieveDocumentSetResponse")
    return addressing, read_response(element)


def _peer_fault(fault: etree._Element) -> PeerFault:
    def value_of(parent: etree._Element, local: str) -> str | None:
        for item in children(parent, local, _SOAP_ONLY):
            values = children(item, "Value", _SOAP_ONLY)
            if values:
                return text_of(values[0])
        return None

    codes = children(fault, "Code", _SOAP_ONLY)
    code = value_of(fault, "Code") or ""
    return PeerFault(code, value_of(codes[0], "Subcode") if codes else None)


def _envelope(headers: list[tuple[str, str, bool]]) -> tuple[etree._Element, etree._Element]:
    """A new Envelope with ``(wsa local name, text, mustUnderstand)`` headers; its Body."""
    root: etree._Element = etree.Element(f"{{{_SOAP}}}Envelope", nsmap={"env": _SOAP, "wsa": _WSA})
    header = sub_element(root, _SOAP, "Header")
    for local, text, must_understand in headers:
        if local == "ReplyTo":
            element = sub_element(header, _WSA, local)
            sub_element(element, _WSA, "Address", text)
        else:
            element = sub_element(header, _WSA, local, text)
        if must_understand:
            element.set(_MUST_UNDERSTAND, "true")
    return root, sub_element(root, _SOAP, "Body")


_PLACEHOLDER = f"<!--{DOCUMENTS_PLACEHOLDER}-->".encode("ascii")


def _serialised(root: etree._Element) -> bytes:
    data: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    return _DECLARATION + data


def build_request(
    addressing: Addressing,
    request: RetrieveRequest,
    *,
    document_namespace: Namespace = Namespace.XDSB,
) -> bytes:
    """A RAD-69/RAD-75 request envelope (digest §2.2, §2.4; items 26, 29).

    Headers: ``wsa:Action``, ``wsa:MessageID`` (``addressing.message_id`` or a new one),
    ``wsa:ReplyTo`` anonymous and ``wsa:To`` when given; Action, ReplyTo and To carry
    ``mustUnderstand="true"`` (as dcm4che's client does, digest §2.2). DocumentRequest is
    written in ``document_namespace`` (xds-b; xdsi-b for IPF-based peers). Raises ValueError
    for text XML cannot hold.
    """
    headers = [
        ("Action", addressing.action, True),
        ("MessageID", addressing.message_id or new_message_id(), False),
        ("ReplyTo", ANONYMOUS, True),
    ]
    if addressing.to:
        headers.append(("To", addressing.to, True))
    root, body = _envelope(headers)
    write_request(body, request, document_namespace=document_namespace)
    return _serialised(root)


def build_response(addressing: Addressing, response: RetrieveResponse) -> bytes:
    """A RetrieveDocumentSetResponse envelope (ITI-43 response; digest §2.5, §2.8).

    Headers: ``wsa:Action`` (mustUnderstand), ``wsa:MessageID`` and ``wsa:RelatesTo`` when
    given. Each Document is an ``xop:Include`` naming ``content_id``, or the ``inline`` bytes
    in base64. Raises ValueError for a DocumentResponse with neither, or text XML cannot hold.
    """
    headers = [("Action", addressing.action, True)]
    if addressing.message_id:
        headers.append(("MessageID", addressing.message_id, False))
    if addressing.relates_to:
        headers.append(("RelatesTo", addressing.relates_to, False))
    root, body = _envelope(headers)
    write_response(body, response)
    head, mark, tail = _serialised(root).partition(_PLACEHOLDER)
    assert mark, "write_response leaves its placeholder"
    return b"".join((head, *document_responses(response.documents), tail))


def build_failure(addressing: Addressing, error: RegistryError) -> bytes:
    """A Failure response carrying ``error`` (the answer to :class:`InvalidRequest`)."""
    return build_response(
        addressing, RetrieveResponse(status=Status.FAILURE, errors=(error,), documents=())
    )


def build_fault(fault: SoapFault, *, relates_to: str | None = None) -> bytes:
    """A SOAP 1.2 Fault envelope for ``fault`` (SOAP 1.2 Part 1 §5.4; WS-Addressing 1.0 SOAP
    Binding §6): Code/Value, nested Subcode values, Reason/Text ``xml:lang="en"`` and, for
    the WS-Addressing faults, Detail holding ``wsa:ProblemAction/wsa:Action`` or
    ``wsa:ProblemHeaderQName``; header ``wsa:Action`` = :data:`FAULT_ACTION` and
    ``wsa:RelatesTo`` when given. Send it with :attr:`SoapFault.http_status`."""
    headers = [("Action", FAULT_ACTION, True)]
    if relates_to:
        headers.append(("RelatesTo", relates_to, False))
    root, body = _envelope(headers)
    element = sub_element(body, _SOAP, "Fault")
    level = sub_element(element, _SOAP, "Code")
    sub_element(level, _SOAP, "Value", f"env:{fault.code}")
    for subcode in (fault.subcode, fault.subsubcode):
        if subcode is None:
            break
        level = sub_element(level, _SOAP, "Subcode")
        sub_element(level, _SOAP, "Value", subcode)
    reason = sub_element(element, _SOAP, "Reason")
    sub_element(reason, _SOAP, "Text", fault.reason).set(_XML_LANG, "en")
    if fault.detail is not None and fault.detail_element is not None:
        holder = sub_element(sub_element(element, _SOAP, "Detail"), _WSA, fault.detail_element)
        if fault.detail_element == "ProblemAction":
            sub_element(holder, _WSA, "Action", fault.detail)
        else:
            holder.text = fault.detail
    return _serialised(root)
