"""What one upstream's RAD-69 / RAD-75 answer is worth, document by document (digest §2.5,
§2.7, §2.9, §2.10; checklist items 18, 20, 25).

A group asked one upstream for some documents; :func:`screen` holds the answer's
DocumentResponses and RegistryErrors against that request and returns what the group
contributes to the consolidated answer:

* A DocumentResponse is matched to a requested document by (bare repository OID,
  DocumentUniqueId), else by DocumentUniqueId alone when exactly one requested document has
  it. One that matches nothing was not asked for and is dropped; a second one for the same
  document is dropped too. Their parts are then not referenced, so nobody sends them on.
* A matched DocumentResponse that lacks homeCommunityId (RAD-75 only: an Imaging Document
  Source need not write it), repositoryUniqueId, documentUniqueId, mimeType or Document is
  not returned: the document gets an XDSRepositoryError saying what was missing (NIST's IIG
  refuses such a response, item 25). One whose part could not be kept (the spool was full
  before the envelope arrived) gets XDSRepositoryOutOfResources, so the consumer asks again.
* The upstream's own RegistryErrors are relayed with their code, whatever it is (item 20).
  A requested document that is neither returned nor named by one of them (its
  DocumentUniqueId in ``codeContext`` or ``location``, where dcm4chee and NIST put it) gets
  an XDSRepositoryError of its own: a document is never silently dropped (RAD69-004).
* ``responding`` (this gateway answers RAD-75, RAD75-004, item 18): every error —
  relayed or our own — has ``location`` = our homeCommunityId (the original location kept in
  ``codeContext``: :func:`.outcomes.relocate`), and every returned document carries our
  homeCommunityId (digest §2.9). A document fetched over RAD-69 is in our community
  whichever role asks, so it carries our homeCommunityId too (item 6).

Errors this module writes name the upstream (iheos-toolkit2 #67) and have ``location`` = our
homeCommunityId. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from gateway.protocols.xca.model import (
    DocumentKey,
    DocumentRequest,
    DocumentResponse,
    ErrorCode,
    RegistryError,
    RetrieveResponse,
)
from gateway.protocols.xca.outcomes import document_error, missing_fields, relocate

__all__ = ["Screened", "screen"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Screened:
    """The documents to return (``content_id`` as the upstream's parts name them), the errors
    to report, and the Content-IDs whose parts are to be sent on."""

    documents: tuple[DocumentResponse, ...]
    errors: tuple[RegistryError, ...]
    wanted: frozenset[str]


def screen(
    requested: Sequence[DocumentRequest],
    answer: RetrieveResponse,
    *,
    upstream: str,
    own: str,
    responding: bool,
    cross_community: bool,
    lost: Collection[str] = (),
) -> Screened:
    """Hold ``answer`` against ``requested`` (module docstring).

    ``upstream`` names the upstream in our error texts; ``own`` is our homeCommunityId
    (``urn:oid:`` form); ``cross_community`` says the answer is a RAD-75 one (a Responding
    Imaging Gateway's, which must carry homeCommunityId); ``lost`` are Content-IDs whose parts
    could not be kept.
    """
    by_key: dict[DocumentKey, DocumentRequest] = {}
    by_uid: dict[str, list[DocumentRequest]] = {}
    for document in requested:
        by_key.setdefault(document.key, document)
        by_uid.setdefault(document.key.document_uid, []).append(document)
    settled: set[DocumentKey] = set()  # returned, or reported by an error of ours
    documents: list[DocumentResponse] = []
    errors: list[RegistryError] = []
    ours = _Sentences(upstream, own)
    for returned in answer.documents:
        match = by_key.get(returned.key)
        if match is None:
            candidates = by_uid.get(returned.key.document_uid, [])
            match = candidates[0] if len(candidates) == 1 else None
        if match is None or match.key in settled:
            continue  # not asked for, or said twice: its part stays unreferenced
        settled.add(match.key)
        judged = returned
        if not cross_community and not (judged.home_community_id or "").strip():
            judged = dataclasses.replace(judged, home_community_id=own)
        missing = missing_fields(judged)
        if missing is not None:
            errors.append(ours.incomplete(match, missing))
        elif judged.content_id is not None and judged.content_id in lost:
            errors.append(ours.no_room(match))
        else:
            if responding or not cross_community:
                judged = dataclasses.replace(judged, home_community_id=own)
            documents.append(judged)
    relayed = [relocate(error, own) if responding else error for error in answer.errors]
    errors[:0] = relayed
    for document in requested:
        key = document.key
        if key in settled or _named(key.document_uid, answer.errors):
            continue
        settled.add(key)
        errors.append(ours.unanswered(document))
    return Screened(
        documents=tuple(documents),
        errors=tuple(errors),
        wanted=frozenset(d.content_id for d in documents if d.content_id is not None),
    )


def _named(document_uid: str, errors: Sequence[RegistryError]) -> bool:
    """Whether an error names the UID as a whole (not as the start of a longer UID)."""
    pattern = re.compile(rf"(?<![0-9.]){re.escape(document_uid)}(?!\.?[0-9])")
    return any(
        pattern.search(error.context) or pattern.search(error.location or "") for error in errors
    )


@dataclass(frozen=True, slots=True)
class _Sentences:
    """The errors this module writes about one upstream's answer."""

    upstream: str
    location: str

    def incomplete(self, document: DocumentRequest, missing: str) -> RegistryError:
        return document_error(
            ErrorCode.REPOSITORY,
            document,
            f"the DocumentResponse of upstream {self.upstream} lacks {missing}",
            location=self.location,
        )

    def no_room(self, document: DocumentRequest) -> RegistryError:
        return document_error(
            ErrorCode.OUT_OF_RESOURCES,
            document,
            f"no spool room was left for it when upstream {self.upstream} sent it; ask again",
            location=self.location,
        )

    def unanswered(self, document: DocumentRequest) -> RegistryError:
        return document_error(
            ErrorCode.REPOSITORY,
            document,
            f"upstream {self.upstream} neither returned it nor reported an error for it",
            location=self.location,
        )
