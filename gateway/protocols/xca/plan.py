"""Which upstream answers for which requested document: a SOAP retrieve split into groups.

An Initiating Imaging Gateway answering RAD-69 groups the DocumentRequests by
HomeCommunityId (digest §2.10; checklist 21-23); a Responding Imaging Gateway answering
RAD-75 — and an initiating gateway for documents of its own community — groups them by
RepositoryUniqueId (digest §2.9; checklist 16, 17, 19). Every document ends up either in
exactly one :class:`Group` (an upstream and how its documents are fetched, the
:class:`Carrier`) or refused with its RegistryError, which no upstream is asked about:

=================================================  ==========================================
document                                           outcome
=================================================  ==========================================
RAD-69, no HomeCommunityId                         ``XDSMissingHomeCommunityId``
HomeCommunityId not configured (or not an OID)     ``XDSUnknownCommunity``
RAD-75, HomeCommunityId other than ours            ``XDSUnknownCommunity``
another community over ``rad-75``                  group, :attr:`Carrier.RAD_75` (SOAP relay)
another community over ``xc-wado``                 group, :attr:`Carrier.XC_WADO` (bridge)
our community, repository unknown (or not an OID)  ``XDSUnknownRepositoryId``
our community, a ``rad-69`` source                 group, :attr:`Carrier.RAD_69` (SOAP relay)
our community, a ``wado-rs`` source                group, :attr:`Carrier.WADO_RS` (bridge)
=================================================  ==========================================

A RAD-75 DocumentRequest without HomeCommunityId is taken as ours (it reached our responding
gateway). Every error's ``location`` is our homeCommunityId (RAD75-004). Groups keep the
order in which their upstream first appears; documents keep request order. Pure: no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.protocols.xca.model import (
    DocumentRequest,
    ErrorCode,
    RegistryError,
    RetrieveRequest,
    bare_oid,
)
from routing.errors import InvalidIdentifier, UnknownCommunity, UnknownSource
from routing.ids import HomeCommunityId, Oid
from routing.registry import Registry
from routing.upstream import Protocol, Upstream

__all__ = ["Carrier", "Group", "Plan", "Refused", "Role", "plan"]


class Role(enum.StrEnum):
    """Which gateway role answers the request."""

    INITIATING = "initiating"  # answering RAD-69 from a consumer of our community
    RESPONDING = "responding"  # answering RAD-75 from another community


class Carrier(enum.StrEnum):
    """How a group's documents are fetched (the upstream's protocol)."""

    RAD_75 = "rad-75"  # one RAD-75 to the community's responding gateway
    RAD_69 = "rad-69"  # one RAD-69 to the Imaging Document Source
    WADO_RS = "wado-rs"  # one WADO-RS instance GET per document (RAD-107)
    XC_WADO = "xc-wado"  # one instance-level RAD-160 per document

    @property
    def transaction(self) -> str:
        """The outbound transaction (leg and audit label)."""
        return _TRANSACTIONS[self]


_TRANSACTIONS = {
    Carrier.RAD_75: "RAD-75",
    Carrier.RAD_69: "RAD-69",
    Carrier.WADO_RS: "RAD-107",
    Carrier.XC_WADO: "RAD-160",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """Documents one upstream answers for, all of community ``home_community_id``."""

    upstream: Upstream
    carrier: Carrier
    home_community_id: HomeCommunityId
    documents: tuple[DocumentRequest, ...]


@dataclass(frozen=True, slots=True)
class Refused:
    """A document answered with ``error`` without asking any upstream."""

    document: DocumentRequest
    error: RegistryError


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    groups: tuple[Group, ...]
    refused: tuple[Refused, ...]


def plan(request: RetrieveRequest, registry: Registry, role: Role) -> Plan:
    """Split ``request`` into groups and refusals (see the module docstring)."""
    own = registry.identity.home_community_id
    location = own.urn
    grouped: dict[str, tuple[Upstream, Carrier, HomeCommunityId, list[DocumentRequest]]] = {}
    refused: list[Refused] = []
    for document in request.documents:
        try:
            community = _community(document, own, role)
            upstream = (
                registry.repository(_repository(document))
                if community == own
                else registry.community(community)
            )
        except _Refusal as refusal:
            refused.append(Refused(document, refusal.error(document, location)))
            continue
        except UnknownCommunity:
            refused.append(Refused(document, _unknown_community(document, location)))
            continue
        except UnknownSource:
            refused.append(Refused(document, _unknown_repository(document, location)))
            continue
        entry = grouped.get(upstream.name)
        if entry is None:
            entry = grouped[upstream.name] = (upstream, _CARRIERS[upstream.protocol], community, [])
        entry[3].append(document)
    groups = tuple(
        Group(
            upstream=upstream, carrier=carrier, home_community_id=community, documents=tuple(docs)
        )
        for upstream, carrier, community, docs in grouped.values()
    )
    return Plan(groups=groups, refused=tuple(refused))


_CARRIERS = {
    Protocol.RAD_75: Carrier.RAD_75,
    Protocol.RAD_69: Carrier.RAD_69,
    Protocol.WADO_RS: Carrier.WADO_RS,
    Protocol.XC_WADO: Carrier.XC_WADO,
}


class _Refusal(Exception):
    def __init__(self, code: ErrorCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def error(self, document: DocumentRequest, location: str) -> RegistryError:
        return RegistryError(
            code=self.code,
            context=f"{self.reason} (document {document.document_uid})",
            location=location,
        )


def _community(document: DocumentRequest, own: HomeCommunityId, role: Role) -> HomeCommunityId:
    text = document.home_community_id
    if text is None or not text.strip():
        if role is Role.INITIATING:
            raise _Refusal(
                ErrorCode.MISSING_HOME_COMMUNITY, "DocumentRequest has no HomeCommunityId"
            )
        return own
    try:
        community = HomeCommunityId(bare_oid(text))
    except InvalidIdentifier:
        raise _Refusal(ErrorCode.UNKNOWN_COMMUNITY, "HomeCommunityId is not an OID") from None
    if role is Role.RESPONDING and community != own:
        raise _Refusal(ErrorCode.UNKNOWN_COMMUNITY, "HomeCommunityId is not this community")
    return community


def _repository(document: DocumentRequest) -> Oid:
    try:
        return Oid(bare_oid(document.repository_id))
    except InvalidIdentifier:
        raise _Refusal(ErrorCode.UNKNOWN_REPOSITORY, "RepositoryUniqueId is not an OID") from None


def _unknown_community(document: DocumentRequest, location: str) -> RegistryError:
    context = (
        f"no gateway is configured for community {document.home_community_id}"
        f" (document {document.document_uid})"
    )
    return RegistryError(code=ErrorCode.UNKNOWN_COMMUNITY, context=context, location=location)


def _unknown_repository(document: DocumentRequest, location: str) -> RegistryError:
    context = (
        f"repository {document.repository_id} is not known to this community"
        f" (document {document.document_uid})"
    )
    return RegistryError(code=ErrorCode.UNKNOWN_REPOSITORY, context=context, location=location)
