"""RAD-69 / RAD-75 messages as frozen values (xcai-digest.md §2.4 to §2.7).

A Retrieve Imaging Document Set request is the same for RAD-69 and RAD-75 (RAD75-001): a list
of DocumentRequests, each naming its study, series, repository and (when it crosses a
community) its homeCommunityId, and one TransferSyntaxUIDList. The StudyRequest/SeriesRequest
nesting is a wire detail: :class:`RetrieveRequest` keeps the documents in request order and
:mod:`.envelope` regroups them when writing. The answer is an ITI-43
``RetrieveDocumentSetResponse``: a status, RegistryErrors and DocumentResponses whose bytes
travel as MTOM parts named by ``content_id`` (or, from a peer that does not use MTOM, inline).

Identifiers are kept as the text the peer wrote (``urn:oid:`` prefixes included) so they can
be echoed verbatim; :meth:`DocumentRequest.key` is the canonical form used for matching.
Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "Action",
    "Addressing",
    "DocumentKey",
    "DocumentRequest",
    "DocumentResponse",
    "ErrorCode",
    "Namespace",
    "RegistryError",
    "RetrieveRequest",
    "RetrieveResponse",
    "Severity",
    "Status",
    "bare_oid",
]


class Namespace(enum.StrEnum):
    SOAP = "http://www.w3.org/2003/05/soap-envelope"
    WSA = "http://www.w3.org/2005/08/addressing"
    XOP = "http://www.w3.org/2004/08/xop/include"
    XDSB = "urn:ihe:iti:xds-b:2007"
    IHERAD = "urn:ihe:rad:xdsi-b:2009"
    RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"


class Action(enum.StrEnum):
    """The ``wsa:Action`` of a request this gateway answers or sends (digest §2.2)."""

    RAD_69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
    RAD_75 = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"

    @property
    def response(self) -> str:
        """The ``wsa:Action`` of the answer to this request."""
        return _RESPONSE_ACTIONS[self]

    @property
    def transaction(self) -> str:
        """``RAD-69`` or ``RAD-75`` (audit EventTypeCode, metric label)."""
        return "RAD-69" if self is Action.RAD_69 else "RAD-75"


_RESPONSE_ACTIONS = {
    Action.RAD_69: "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    Action.RAD_75: "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse",
}


class Status(enum.StrEnum):
    SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
    PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"


class Severity(enum.StrEnum):
    ERROR = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    WARNING = "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning"


class ErrorCode(enum.StrEnum):
    """The codes this gateway emits (digest §2.7). Relayed errors keep whatever code the peer
    wrote (``XDSMissingDocument``, ``urn:dicom:wado:0007``…): :attr:`RegistryError.code` is
    text."""

    DOCUMENT_UNIQUE_ID = "XDSDocumentUniqueIdError"
    UNKNOWN_REPOSITORY = "XDSUnknownRepositoryId"
    UNKNOWN_COMMUNITY = "XDSUnknownCommunity"
    UNAVAILABLE_COMMUNITY = "XDSUnavailableCommunity"
    MISSING_HOME_COMMUNITY = "XDSMissingHomeCommunityId"
    REPOSITORY = "XDSRepositoryError"
    REPOSITORY_BUSY = "XDSRepositoryBusy"
    OUT_OF_RESOURCES = "XDSRepositoryOutOfResources"
    REGISTRY = "XDSRegistryError"


def bare_oid(text: str) -> str:
    """``urn:oid:1.2`` / ``oid:1.2`` / ``1.2`` → ``1.2`` (prefix in any letter case), stripped."""
    value = text.strip()
    lower = value.lower()
    for prefix in ("urn:oid:", "oid:"):
        if lower.startswith(prefix):
            return value[len(prefix) :]
    return value


@dataclass(frozen=True, slots=True)
class DocumentKey:
    """What identifies a requested document for matching answers to requests: the bare
    repository OID and the DocumentUniqueId (a SOP Instance UID)."""

    repository_id: str
    document_uid: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentRequest:
    """One DocumentRequest with the study and series it was listed under."""

    study_uid: str
    series_uid: str
    repository_id: str
    document_uid: str
    home_community_id: str | None = None

    @property
    def key(self) -> DocumentKey:
        return DocumentKey(bare_oid(self.repository_id), self.document_uid.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrieveRequest:
    """A RetrieveImagingDocumentSetRequest: documents in request order, transfer syntaxes in
    preference order."""

    documents: tuple[DocumentRequest, ...]
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Addressing:
    """The WS-Addressing 1.0 headers of one message."""

    action: str
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None  # None or the anonymous URI: answer on this connection
    relates_to: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistryError:
    code: str
    context: str
    location: str | None = None
    severity: Severity = Severity.ERROR


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentResponse:
    """One returned document. ``content_id`` names its MTOM part (without ``<>``, percent-
    decoded); ``inline`` holds the bytes when a peer sent them as base64 text instead."""

    home_community_id: str | None
    repository_id: str
    document_uid: str
    mime_type: str = "application/dicom"
    content_id: str | None = None
    inline: bytes | None = None

    @property
    def key(self) -> DocumentKey:
        return DocumentKey(bare_oid(self.repository_id), self.document_uid.strip())


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrieveResponse:
    status: Status | str
    errors: tuple[RegistryError, ...] = ()
    documents: tuple[DocumentResponse, ...] = ()
