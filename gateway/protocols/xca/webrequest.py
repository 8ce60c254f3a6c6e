"""A RAD-160 request as the one RAD-75 or RAD-69 that answers it (xcai-digest.md §8.1;
checklist items 30-32).

==========================================  ==============================================
RAD-160 (XC-WADO) / WADO-RS                 RAD-75 / RAD-69 DocumentRequest
==========================================  ==============================================
``homeCommunityId/{hcid}``                  ``HomeCommunityId`` = ``urn:oid:{hcid}``: the
                                            remote community (RAD-75), or ours (RAD-69 to
                                            one of our sources: the path's hcid is ours)
``RetrieveLocationUID/{rluid}``             ``RepositoryUniqueId`` = the bare OID
``studies/{st}`` ``series/{se}``            ``studyInstanceUID``, ``seriesInstanceUID``
``instances/{sop}``                         ``DocumentUniqueId``: one DocumentRequest
study or series level                       one DocumentRequest per instance a manifest
                                            lists there (:mod:`gateway.manifestcache`);
                                            none held: not bridged (409)
Accept, by q                                ``TransferSyntaxUIDList``
                                            (:func:`~.outcomes.transfer_syntaxes_for`)
``metadata`` ``rendered`` ``thumbnail``     not carried (:data:`NOT_BRIDGEABLE`; 501)
``frames`` ``bulkdata``
==========================================  ==============================================

Why the last row refuses rather than derives (README "Bridge matrix"): RAD-69/RAD-75 return
whole instances, so a frame or a bulk data element would cost the whole instance fetched to
cut out a piece of it; rendered and thumbnail need an image codec and windowing this gateway
does not carry; metadata would need every instance of a study moved whole to describe it,
and its BulkDataURIs would point at resources the bridge does not serve either.

The refusals themselves are :class:`~gateway.errors.BridgeRefused` errors, raised by the
I/O side (:mod:`.fromweb`). Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from gateway.protocols.xca.model import DocumentRequest, ErrorCode, RegistryError
from gateway.protocols.xca.outcomes import WADO_TRANSFER_SYNTAX_CODE, transfer_syntaxes_for
from routing.accept import outbound_accept
from routing.rad160 import Rad160Request, ResourceKind

__all__ = [
    "NOT_BRIDGEABLE",
    "Listed",
    "documents_for",
    "error_summary",
    "transfer_syntaxes",
]

NOT_BRIDGEABLE = frozenset(kind for kind in ResourceKind if kind is not ResourceKind.INSTANCES)
"""What RAD-69/RAD-75 cannot carry: everything but whole instances (see the table)."""

_KNOWN_CODES = frozenset({*(code.value for code in ErrorCode), WADO_TRANSFER_SYNTAX_CODE})


class Listed(Protocol):
    """One instance a manifest lists (:class:`gateway.manifestcache.ListedInstance`)."""

    @property
    def series_uid(self) -> str: ...

    @property
    def sop_instance_uid(self) -> str: ...

    @property
    def retrieve_location_uid(self) -> str: ...


def transfer_syntaxes(accept: Sequence[str], *, any_syntax: Sequence[str]) -> tuple[str, ...]:
    """The TransferSyntaxUIDList for the request's Accept header values, in q order (no
    Accept: Explicit VR Little Endian; checklist 31); ``()`` when no range asks for DICOM
    instances.

    Ranges naming a syntax DICOMweb cannot carry (Implicit VR Little Endian, Big Endian) are
    left out first, as for a relayed request, since the parts go back as DICOMweb parts;
    :class:`~routing.errors.UnsupportedTransferSyntax` is raised when only such ranges were
    given.
    """
    kept = outbound_accept(list(accept))
    return transfer_syntaxes_for(", ".join(kept) or None, any_syntax=any_syntax)


def documents_for(
    rad160: Rad160Request, listed: Sequence[Listed] | None
) -> tuple[DocumentRequest, ...] | None:
    """The DocumentRequests of a Get Instances ``rad160`` (checklist 30, 32).

    Instance level: exactly one, from the path (``listed`` is not read). Study or series
    level: one per instance of ``listed`` (what a manifest lists at the path's Retrieve
    Location UID, and in its series, in manifest order); None when ``listed`` is None or
    empty: the request cannot be bridged (never a silently partial study).
    """
    community = rad160.home_community_id.urn
    if rad160.instance is not None:
        assert rad160.series is not None  # the grammar has no instance without its series
        return (
            DocumentRequest(
                study_uid=str(rad160.study),
                series_uid=str(rad160.series),
                repository_id=str(rad160.retrieve_location_uid),
                document_uid=str(rad160.instance),
                home_community_id=community,
            ),
        )
    if not listed:
        return None
    return tuple(
        DocumentRequest(
            study_uid=str(rad160.study),
            series_uid=instance.series_uid,
            repository_id=instance.retrieve_location_uid,
            document_uid=instance.sop_instance_uid,
            home_community_id=community,
        )
        for instance in listed
    )


def error_summary(errors: Iterable[RegistryError]) -> tuple[str, ...]:
    """The RegistryError codes of an answer, counted (``XDSDocumentUniqueIdError (3)``), in
    order of first appearance; a code this gateway does not know is counted as ``other``
    (a peer's text never reaches a client)."""
    counts = Counter(e.code if e.code in _KNOWN_CODES else "other" for e in errors)
    return tuple(code if n == 1 else f"{code} ({n})" for code, n in counts.items())
