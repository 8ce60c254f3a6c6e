"""The groups' answers made into one RetrieveDocumentSetResponse (digest §2.6, §2.9, §2.10;
items 6, 8, 17-19, 24).

:func:`consolidate` takes the plan's refusals and every group's
:class:`~.results.GroupAnswer` and returns what the writer sends and what the exchange
records:

* the documents, in group order then in each group's order, each echoing the requested
  RepositoryUniqueId and DocumentUniqueId verbatim (item 6) with mimeType
  ``application/dicom`` unless the source said otherwise, and a new Content-ID
  (``content_id(n)``, renamed from the group's own, item 7). A document no one asked for, or
  returned twice, is left out. A responding gateway puts its own homeCommunityId on every
  document and ``location`` on every error (RAD75-004, items 6, 18); an initiating gateway
  echoes the request's homeCommunityId;
* the errors: the refusals', then each group's; a group that answered neither a document
  nor any error for some of its documents gets one XDSRepositoryError each for those
  (RAD69-004: every requested document is returned or has an error);
* the status by :func:`.outcomes.status_for` (item 8);
* one :class:`~gateway.exchange.DocumentOutcome` per requested document, in request order:
  returned, or the code of the error that names it (its DocumentUniqueId in the error's
  context or location, else the group's first error).

Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.exchange import DocumentOutcome
from gateway.protocols.xca.model import (
    DocumentKey,
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveRequest,
    RetrieveResponse,
)
from gateway.protocols.xca.outcomes import document_error, relocate, status_for
from gateway.protocols.xca.results import GroupAnswer

if TYPE_CHECKING:  # annotations only: the registry behind the plan is no business of this one
    from gateway.protocols.xca.plan import Group, Refused
    from routing.ids import HomeCommunityId

__all__ = ["Consolidated", "consolidate", "outcome_of"]

_DICOM = "application/dicom"
_SILENT = "the source answered neither the document nor an error for it"


@dataclass(frozen=True, slots=True, kw_only=True)
class Consolidated:
    """What to answer: the response (documents named by their new Content-IDs), per answer
    the renaming of its parts' Content-IDs, the bytes of documents a peer sent inline (to
    go out as parts under their new ids), and the outcome of each requested document."""

    response: RetrieveResponse
    renames: tuple[Mapping[str, str], ...]
    inline: tuple[tuple[str, bytes], ...]
    outcomes: tuple[DocumentOutcome, ...]


def consolidate(
    request: RetrieveRequest,
    refused: Sequence[Refused],
    answers: Sequence[tuple[Group, GroupAnswer]],
    *,
    own: HomeCommunityId,
    responding: bool,
    content_id: Callable[[int], str],
) -> Consolidated:
    """One answer from the plan's refusals and the groups' answers (module docstring)."""
    documents: list[DocumentResponse] = []
    renames: list[dict[str, str]] = []
    inline: list[tuple[str, bytes]] = []
    errors: list[RegistryError] = [refusal.error for refusal in refused]
    returned: dict[DocumentKey, str] = {}  # key → the upstream that returned it
    group_errors: dict[str, tuple[RegistryError, ...]] = {}
    for group, answer in answers:
        wanted = {document.key: document for document in group.documents}
        names: dict[str, str] = {}
        for found in answer.documents:
            asked = wanted.get(found.key)
            if asked is None or found.key in returned:
                continue
            if found.content_id is None and found.inline is None:
                continue  # nothing to send: counted as silent below
            new_id = content_id(len(documents))
            if found.content_id is not None:
                names[found.content_id] = new_id
            else:
                assert found.inline is not None
                inline.append((new_id, found.inline))
            returned[found.key] = group.upstream.name
            documents.append(_echoed(found, asked, new_id, own=own, responding=responding))
        renames.append(names)
        own_errors = list(answer.errors)
        if not own_errors:
            location = own.urn
            own_errors = [
                document_error(ErrorCode.REPOSITORY, document, _SILENT, location=location)
                for document in group.documents
                if document.key not in returned
            ]
        group_errors[group.upstream.name] = tuple(own_errors)
        errors += own_errors
    if responding:
        errors = [relocate(error, own) for error in errors]
    status = status_for(len(request.documents), len(documents), errors)
    return Consolidated(
        response=RetrieveResponse(status=status, errors=tuple(errors), documents=tuple(documents)),
        renames=tuple(renames),
        inline=tuple(inline),
        outcomes=_outcomes(request, refused, answers, returned, group_errors),
    )


def _echoed(
    found: DocumentResponse,
    asked: DocumentRequest,
    new_id: str,
    *,
    own: HomeCommunityId,
    responding: bool,
) -> DocumentResponse:
    community = own.urn if responding else (asked.home_community_id or found.home_community_id)
    return DocumentResponse(
        home_community_id=community,
        repository_id=asked.repository_id,
        document_uid=asked.document_uid,
        mime_type=(found.mime_type or "").strip() or _DICOM,
        content_id=new_id,
    )


def _outcomes(
    request: RetrieveRequest,
    refused: Sequence[Refused],
    answers: Sequence[tuple[Group, GroupAnswer]],
    returned: Mapping[DocumentKey, str],
    group_errors: Mapping[str, tuple[RegistryError, ...]],
) -> tuple[DocumentOutcome, ...]:
    refusals = {refusal.document.key: refusal.error.code for refusal in refused}
    upstream_of = {
        document.key: group.upstream.name for group, _ in answers for document in group.documents
    }
    outcomes = []
    for document in request.documents:
        key = document.key
        upstream = returned.get(key) or upstream_of.get(key)
        code: str | None = None
        if key not in returned:
            if key in refusals:
                code = refusals[key]
            else:
                code = _code_for(document, group_errors.get(upstream or "", ()))
        outcomes.append(outcome_of(document, error_code=code, upstream=upstream))
    return tuple(outcomes)


def outcome_of(
    document: DocumentRequest, *, error_code: str | None, upstream: str | None
) -> DocumentOutcome:
    """The exchange's record of one requested document: returned (``error_code`` None) or
    not, and which upstream answered for it."""
    return DocumentOutcome(
        study_uid=document.study_uid,
        series_uid=document.series_uid,
        document_uid=document.document_uid,
        repository_id=document.repository_id,
        home_community_id=document.home_community_id,
        error_code=error_code,
        upstream=upstream,
    )


def _code_for(document: DocumentRequest, errors: Sequence[RegistryError]) -> str:
    uid = document.document_uid.strip()
    if uid:
        # The UID on its own, not as the start of a longer one (1.2.3 is not in 1.2.3.4).
        named = re.compile(r"(?<![0-9.])" + re.escape(uid) + r"(?![0-9]|\.[0-9])")
        for error in errors:
            if named.search(error.context) or uid == (error.location or "").strip():
                return error.code
    return errors[0].code if errors else ErrorCode.REPOSITORY.value
