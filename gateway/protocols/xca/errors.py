"""The XCA-I error tree: what can go wrong reading or answering a RAD-69 / RAD-75 message.

::

    XcaError(Exception)
     ├─ SoapFault                  answered with a SOAP 1.2 Fault (envelope.build_fault)
     │   ├─ MalformedMessage        not XML, not a SOAP 1.2 Envelope, no Body, wrong body element
     │   │   └─ VersionMismatch     the root is not a SOAP 1.2 Envelope (SOAP 1.1 too)
     │   ├─ ForbiddenXml            a DOCTYPE/DTD, an entity declaration or reference, XInclude
     │   ├─ EnvelopeTooLarge        the envelope (root part) is over its configured cap
     │   ├─ ActionNotSupported      wsa:Action names no operation of this endpoint
     │   ├─ AddressingHeaderRequired no wsa:Action (or no wsa:MessageID on a request)
     │   ├─ InvalidAddressingHeader a WS-Addressing header given twice
     │   ├─ AsyncNotSupported       ReplyTo/FaultTo neither absent nor the anonymous URI
     │   └─ MtomError               the MTOM/XOP package cannot be read
     ├─ InvalidRequest             the request breaks a content rule: a Failure RegistryResponse
     └─ AnswerUnreadable           a peer's answer (envelope or package) cannot be read
         └─ PeerFault               the peer answered with a SOAP Fault

A :class:`SoapFault` carries what the Fault says on the wire — ``code`` (SOAP 1.2 Part 1
§5.4.6), ``subcode`` and ``subsubcode`` (QName text with the ``wsa`` prefix, WS-Addressing 1.0
SOAP Binding §6), ``reason`` (always this module's own sentence, never a parser's message) and
``detail`` (the problem action or header QName, written by :func:`.envelope.build_fault`
inside the element ``detail_element`` names). :attr:`SoapFault.http_status` is the status the
SOAP 1.2 HTTP binding (Part 2 §7.5.2) gives the fault.

:class:`InvalidRequest` is not a Fault: the envelope was read, the request is not usable, so
the answer is a Failure RetrieveDocumentSetResponse carrying ``registry_error`` (digest §9 item
5) and no upstream is contacted. :class:`AnswerUnreadable` never reaches the client that sent
the request: the I/O layer turns it into one error per document asked of that peer.

Pure: no I/O.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from gateway.protocols.xca.model import Addressing, ErrorCode, RegistryError

__all__ = [
    "ActionNotSupported",
    "AddressingHeaderRequired",
    "AnswerUnreadable",
    "AsyncNotSupported",
    "EnvelopeTooLarge",
    "FaultCode",
    "ForbiddenXml",
    "InvalidAddressingHeader",
    "InvalidRequest",
    "MalformedMessage",
    "MtomError",
    "PeerFault",
    "SoapFault",
    "VersionMismatch",
    "XcaError",
]

FaultCode = Literal["Sender", "Receiver", "VersionMismatch"]

_DETAIL_LIMIT = 1024  # a client's own action echoed back, but never an unbounded one


class XcaError(Exception):
    """Root of the XCA-I errors."""


class SoapFault(XcaError):
    """A message this gateway answers with a SOAP 1.2 Fault.

    ``reason`` defaults to the class's own sentence; ``detail`` is cut to 1,024 characters.
    """

    code: ClassVar[FaultCode] = "Sender"
    subcode: ClassVar[str | None] = None
    subsubcode: ClassVar[str | None] = None
    detail_element: ClassVar[str | None] = None  # wsa:<name> holding ``detail`` in env:Detail
    default_reason: ClassVar[str] = "The message could not be processed."

    def __init__(self, reason: str | None = None, *, detail: str | None = None) -> None:
        self.reason = reason or self.default_reason
        self.detail = None if detail is None else detail[:_DETAIL_LIMIT]
        super().__init__(self.reason)

    @property
    def http_status(self) -> int:
        """400 for a Sender fault, 500 otherwise (SOAP 1.2 Part 2 §7.5.2.2 table 20)."""
        return 400 if self.code == "Sender" else 500


class MalformedMessage(SoapFault):
    default_reason = "The message is not a readable SOAP 1.2 request."


class VersionMismatch(MalformedMessage):
    """The root is not a SOAP 1.2 Envelope (SOAP 1.2 Part 1 §5.4.7): env:VersionMismatch."""

    code = "VersionMismatch"
    default_reason = "Only SOAP 1.2 envelopes are accepted."


class ForbiddenXml(SoapFault):
    """A DTD, entity or XInclude: refused before anything is expanded or fetched."""

    default_reason = "Document type declarations, entities and XInclude are not accepted."


class EnvelopeTooLarge(SoapFault):
    default_reason = "The SOAP envelope is larger than this gateway accepts."


class ActionNotSupported(SoapFault):
    """WS-Addressing 1.0 SOAP Binding §6.4.4: ``detail`` is the action."""

    subcode = "wsa:ActionNotSupported"
    detail_element = "ProblemAction"
    default_reason = "The wsa:Action of the message is not supported by this endpoint."


class AddressingHeaderRequired(SoapFault):
    """WS-Addressing 1.0 SOAP Binding §6.4.3: ``detail`` is the missing header's QName."""

    subcode = "wsa:MessageAddressingHeaderRequired"
    detail_element = "ProblemHeaderQName"
    default_reason = "A required WS-Addressing header is missing."


class InvalidAddressingHeader(SoapFault):
    """WS-Addressing 1.0 SOAP Binding §6.4.1, subcode InvalidCardinality."""

    subcode = "wsa:InvalidAddressingHeader"
    subsubcode = "wsa:InvalidCardinality"
    detail_element = "ProblemHeaderQName"
    default_reason = "A WS-Addressing header is given more than once."


class AsyncNotSupported(SoapFault):
    """The asynchronous exchange is not offered (digest §2.10): only the anonymous reply
    address (WS-Addressing 1.0 Metadata §5.2.1, OnlyAnonymousAddressSupported)."""

    subcode = "wsa:InvalidAddressingHeader"
    subsubcode = "wsa:OnlyAnonymousAddressSupported"
    detail_element = "ProblemHeaderQName"
    default_reason = "Only synchronous replies (the anonymous address) are supported."


class MtomError(SoapFault):
    """The MTOM/XOP package is unreadable: boundary, closing delimiter, root part, Content-IDs,
    nesting, part headers, transfer encoding."""

    default_reason = "The MTOM/XOP package could not be read."


class InvalidRequest(XcaError):
    """The request is well-formed SOAP but breaks a content rule of RAD-69/RAD-75 (digest
    §2.4): answered with a Failure carrying ``registry_error`` (XDSRegistryError).
    ``addressing``: the request's headers, read before its content was refused (set by
    :func:`.envelope.parse_request`; the Failure relates to its MessageID)."""

    def __init__(self, context: str, *, addressing: Addressing | None = None) -> None:
        self.registry_error = RegistryError(code=ErrorCode.REGISTRY, context=context)
        self.addressing = addressing
        super().__init__(context)


class AnswerUnreadable(XcaError):
    """A peer's answer cannot be read; ``reason`` is our own sentence (loggable, not for the
    client)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PeerFault(AnswerUnreadable):
    """The peer answered with a SOAP Fault; ``code``/``subcode`` as it wrote them (cut)."""

    def __init__(self, code: str, subcode: str | None) -> None:
        self.code = code[:128]
        self.subcode = None if subcode is None else subcode[:128]
        super().__init__("the peer answered with a SOAP Fault")
