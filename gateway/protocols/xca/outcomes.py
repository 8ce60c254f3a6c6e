"""The rules that turn outcomes into answers: status consolidation, RegistryErrors, and the
mappings between XCA-I and DICOMweb (digest §2.6, §2.7, §8).

* :func:`status_for` — Success when every requested document came back and no error has
  Error severity; Failure when none came back; PartialSuccess otherwise (§2.6, item 8).
* :func:`relocate` — a Responding Imaging Gateway puts its own homeCommunityId in the
  ``location`` of every error it returns, keeping the original one in ``codeContext``
  (RAD75-004, item 18).
* :func:`document_error`, :func:`wado_error`, :func:`community_error` — the RegistryError
  for one document, in our own words (§2.7, §8.3). A transfer-syntax failure says
  :data:`TRANSFER_SYNTAX_CONTEXT`; :func:`is_transfer_syntax_error` recognises it, any
  XDSRepositoryError that speaks of a transfer syntax (NIST's reference wording) and
  dcm4chee's ``urn:dicom:wado:0007``.
* :func:`accept_for` — the Accept header of one WADO-RS instance GET built from a
  TransferSyntaxUIDList (§8.2); :func:`transfer_syntaxes_for` — the reverse, a RAD-160
  Accept turned into a TransferSyntaxUIDList (§8.1); :func:`http_answer` — the HTTP status of
  a bridged RAD-160 answer from a RAD-75 status (§8.1).

Pure: no I/O.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence

from gateway.protocols.xca.model import (
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveResponse,
    Severity,
    Status,
    bare_oid,
)
from routing.accept import FORBIDDEN_TRANSFER_SYNTAXES, split_ranges
from routing.media import media_or_none

__all__ = [
    "EXPLICIT_VR_LITTLE_ENDIAN",
    "PARTIAL_WARNING",
    "TRANSFER_SYNTAX_CONTEXT",
    "WADO_TRANSFER_SYNTAX_CODE",
    "Unroutable",
    "accept_for",
    "community_error",
    "document_error",
    "http_answer",
    "is_transfer_syntax_error",
    "missing_fields",
    "relocate",
    "status_for",
    "transfer_syntaxes_for",
    "wado_error",
]

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
TRANSFER_SYNTAX_CONTEXT = "cannot be supplied in any requested transfer syntax"
"""What every transfer-syntax error this gateway writes says (digest §2.7, NIST iig_5404)."""
WADO_TRANSFER_SYNTAX_CODE = "urn:dicom:wado:0007"
"""dcm4chee's code for the same failure (digest §4.1): accepted, never emitted."""
PARTIAL_WARNING = '299 - "Some requested instances could not be retrieved."'
"""The Warning header (RFC 7234 §5.5) of a 206 answer bridged from PartialSuccess."""

_UID = re.compile(r"[0-9]+(?:\.[0-9]+)*")
_MAX_UID = 64  # PS3.5 §9.1
_MAX_SYNTAXES = 1000  # q-values have three decimals (RFC 9110 §12.4.2)
_REASON_LIMIT = 160
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_INSTANCE_TYPE = "application/dicom"


def status_for(requested: int, returned: int, errors: Sequence[RegistryError]) -> Status:
    """The RegistryResponse status of an answer (digest §2.6, item 8)."""
    if returned <= 0:
        return Status.FAILURE
    if returned >= requested and not any(e.severity is Severity.ERROR for e in errors):
        return Status.SUCCESS
    return Status.PARTIAL_SUCCESS


def _urn_oid(home_community_id: str) -> str:
    return f"urn:oid:{bare_oid(home_community_id)}"


def relocate(error: RegistryError, home_community_id: str) -> RegistryError:
    """``error`` with ``location`` = our homeCommunityId (``urn:oid:`` form); a different
    original location is appended to ``codeContext``. Applying it twice changes nothing more
    (RAD75-004, item 18)."""
    location = _urn_oid(home_community_id)
    context = error.context
    if error.location and bare_oid(error.location) != bare_oid(location):
        context = f"{context} [reported at {error.location}]"
    return RegistryError(
        code=error.code, context=context, location=location, severity=error.severity
    )


def document_error(
    code: str, document: DocumentRequest, context: str, *, location: str
) -> RegistryError:
    """The error for one requested document: ``context`` (our sentence) prefixed with the
    document's SOP Instance UID and repository."""
    return RegistryError(
        code=code,
        context=(
            f"Document {document.document_uid} of repository {document.repository_id}: {context}"
        ),
        location=location,
    )


def is_transfer_syntax_error(error: RegistryError) -> bool:
    """Whether ``error`` reports that no requested transfer syntax could be supplied."""
    if error.code == WADO_TRANSFER_SYNTAX_CODE:
        return True
    if error.code != ErrorCode.REPOSITORY:
        return False
    context = error.context.lower()
    return "transfer syntax" in context or "transfer-syntax" in context


def _bounded(text: str) -> str:
    return _CONTROL.sub(" ", text)[:_REASON_LIMIT].strip()


def wado_error(
    status: int | None, failure: str | None, document: DocumentRequest, *, location: str
) -> RegistryError:
    """The error for a WADO-RS instance GET that returned no instance (digest §8.3, item 36).

    ``status`` is the HTTP status, or None when there was none (timeout, connect or TLS
    failure: ``failure`` is then our own short reason, cut to 160 characters). 404, 410, 401
    and 403 → XDSDocumentUniqueIdError (ITI-43 folds "not authorised" into it); 406 →
    XDSRepositoryError saying :data:`TRANSFER_SYNTAX_CONTEXT`; 503 → XDSRepositoryBusy;
    anything else → XDSRepositoryError. The upstream's body is never quoted.
    """
    if status in (404, 410):
        code, context = ErrorCode.DOCUMENT_UNIQUE_ID, "the source does not hold it"
    elif status in (401, 403):
        code, context = ErrorCode.DOCUMENT_UNIQUE_ID, "the source refused access to it"
    elif status == 406:
        code, context = ErrorCode.REPOSITORY, TRANSFER_SYNTAX_CONTEXT
    elif status == 503:
        code, context = ErrorCode.REPOSITORY_BUSY, "the source is busy (HTTP 503)"
    elif status is None:
        reason = _bounded(failure or "") or "no answer"
        code, context = ErrorCode.REPOSITORY, f"the source could not be reached ({reason})"
    else:
        code, context = ErrorCode.REPOSITORY, f"the source answered HTTP {status}"
    return document_error(code, document, context, location=location)


class Unroutable(enum.Enum):
    """Why a DocumentRequest could not be sent anywhere (digest §2.7, items 17, 19, 22, 23)."""

    MISSING_COMMUNITY = ErrorCode.MISSING_HOME_COMMUNITY
    UNKNOWN_COMMUNITY = ErrorCode.UNKNOWN_COMMUNITY
    UNAVAILABLE_COMMUNITY = ErrorCode.UNAVAILABLE_COMMUNITY
    UNKNOWN_REPOSITORY = ErrorCode.UNKNOWN_REPOSITORY


def community_error(
    reason: Unroutable,
    document: DocumentRequest,
    *,
    location: str,
    failure: str | None = None,
) -> RegistryError:
    """The error for a document whose community or repository cannot be used. The context
    names the element and the responder (iheos-toolkit2 #67); ``failure`` (our own short
    reason, for an unavailable community) is cut to 160 characters."""
    if reason is Unroutable.MISSING_COMMUNITY:
        context = "the DocumentRequest has no HomeCommunityId"
    elif reason is Unroutable.UNKNOWN_COMMUNITY:
        context = f"homeCommunityId {document.home_community_id} is not a known community"
    elif reason is Unroutable.UNAVAILABLE_COMMUNITY:
        detail = _bounded(failure or "") or "no answer"
        context = (
            f"the responding gateway of community {document.home_community_id} "
            f"is unavailable ({detail})"
        )
    else:
        context = f"RepositoryUniqueId {document.repository_id} is not a known repository"
    return document_error(str(reason.value), document, context, location=location)


def missing_fields(document: DocumentResponse) -> str | None:
    """Which of homeCommunityId, repositoryUniqueId, documentUniqueId, mimeType and Document
    a peer's DocumentResponse lacks, comma-separated; None when it has them all (item 25)."""
    missing = [
        name
        for name, value in (
            ("homeCommunityId", document.home_community_id),
            ("repositoryUniqueId", document.repository_id),
            ("documentUniqueId", document.document_uid),
            ("mimeType", document.mime_type),
        )
        if not (value and value.strip())
    ]
    if document.content_id is None and document.inline is None:
        missing.append("Document")
    return ", ".join(missing) or None


def accept_for(transfer_syntaxes: Sequence[str]) -> str | None:
    """The Accept header of one WADO-RS instance GET (digest §8.2, item 35).

    One ``multipart/related; type="application/dicom"; transfer-syntax=X`` range per
    requested syntax, q-values decreasing in list order, written least preferred first:
    q-values alone rank ranges (RFC 9110 §12.5.1), and a source that ranks them by position
    takes the last one (Orthanc's DICOMweb plugin 1.7 does), so both pick the consumer's
    first choice. Implicit VR Little Endian and Explicit VR Big Endian are left out
    (DICOMweb does not serve them, PS3.18 §8.7.3.5.2), and so are repeats and values that
    are not UIDs. None when nothing is left: the caller reports the transfer-syntax error.
    """
    kept: list[str] = []
    for syntax in transfer_syntaxes:
        uid = bare_oid(syntax)
        if (
            uid not in kept
            and uid not in FORBIDDEN_TRANSFER_SYNTAXES
            and len(uid) <= _MAX_UID
            and _UID.fullmatch(uid)
        ):
            kept.append(uid)
    kept = kept[:_MAX_SYNTAXES]
    if not kept:
        return None
    step = min(100, 1000 // len(kept))  # thousandths; the last q stays above 0
    ranges = []
    for index, uid in enumerate(kept):
        weight = 1000 - index * step
        q = "" if index == 0 else ";q=" + f"0.{weight:03d}".rstrip("0")
        ranges.append(f'multipart/related; type="{_INSTANCE_TYPE}"; transfer-syntax={uid}{q}')
    return ", ".join(reversed(ranges))


def transfer_syntaxes_for(accept: str | None, *, any_syntax: Sequence[str]) -> tuple[str, ...]:
    """The TransferSyntaxUIDList for a RAD-160 instance retrieve with this Accept (§8.1,
    item 31).

    Ranges for DICOM instances (``multipart/related`` whose ``type`` is absent or
    ``application/dicom``, and ``*/*``/``multipart/*``) are taken by decreasing q, in header
    order among equals; q=0 ranges are left out. A range without ``transfer-syntax`` stands
    for Explicit VR Little Endian (PS3.18 §8.7.3.5.2); ``transfer-syntax=*`` for
    ``any_syntax`` (configured). No Accept, or an empty one, gives Explicit VR Little
    Endian; an Accept with no instance range gives ``()`` (the caller answers 406).
    """
    if accept is None or not accept.strip():
        return (EXPLICIT_VR_LITTLE_ENDIAN,)
    weighted: list[tuple[float, int, tuple[str, ...]]] = []
    for index, media_range in enumerate(split_ranges(accept)):
        media = media_or_none(media_range)
        if media is None or not _instance_range(media.essence, media.param("type")):
            continue
        weight = _weight(media.param("q"))
        if weight <= 0:
            continue
        syntax = (media.param("transfer-syntax") or "").strip()
        if not syntax:
            syntaxes: tuple[str, ...] = (EXPLICIT_VR_LITTLE_ENDIAN,)
        elif syntax == "*":
            syntaxes = tuple(any_syntax)
        else:
            syntaxes = (bare_oid(syntax),)
        weighted.append((-weight, index, syntaxes))
    result: list[str] = []
    for _, _, syntaxes in sorted(weighted):
        for uid in syntaxes:
            if uid not in result and _UID.fullmatch(uid) and len(uid) <= _MAX_UID:
                result.append(uid)
    return tuple(result)


def _instance_range(essence: str, part_type: str | None) -> bool:
    if essence in ("*/*", "multipart/*"):
        return True
    return essence == "multipart/related" and (
        part_type is None or part_type.strip().lower() == _INSTANCE_TYPE
    )


def _weight(value: str | None) -> float:
    if value is None:
        return 1.0
    try:
        return min(max(float(value), 0.0), 1.0)
    except ValueError:
        return 1.0


def http_answer(response: RetrieveResponse) -> tuple[int, str | None]:
    """HTTP status and Warning value of a RAD-160 answer bridged from a RAD-75 response
    (digest §8.1, item 33).

    Success → 200; PartialSuccess → 206 with :data:`PARTIAL_WARNING`; Failure → 406 when
    every error is a transfer-syntax error, 502 when every error is XDSUnavailableCommunity
    (the remote community did not answer: a gateway failure, RFC 9110 §15.6.3), else 404 —
    XDSUnknownCommunity included, as for a RAD-160 to an unconfigured community. A status
    this gateway does not know → 502.
    """
    status = str(response.status)
    if status == Status.SUCCESS:
        return 200, None
    if status == Status.PARTIAL_SUCCESS:
        return 206, PARTIAL_WARNING
    if status != Status.FAILURE:
        return 502, None
    errors = response.errors
    if errors and all(is_transfer_syntax_error(error) for error in errors):
        return 406, None
    if errors and all(error.code == ErrorCode.UNAVAILABLE_COMMUNITY for error in errors):
        return 502, None
    return 404, None
