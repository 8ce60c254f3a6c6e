"""The routing configuration as frozen values.

Built once by :mod:`routing.loader` from an operator's YAML or JSON file and never mutated:
a reload builds a new :class:`Config` and a new registry and swaps them whole. Everything is
hashable except :class:`Config` itself (it holds mappings), so an :class:`Upstream` can key a
connection pool. Durations are seconds and end in ``_s``. Each field is declared once
(:mod:`routing.declare`): the loader, the JSON Schema and the reference all read it.

The shape follows Envoy's route → cluster split: ``communities`` and ``sources`` name an
upstream; the upstream (:mod:`routing.upstream`: base URLs in failover order, TLS, timeouts,
limits) is defined once. A community is reached over XC-WADO or RAD-75, a source over WADO-RS
or RAD-69 (:data:`COMMUNITY_PROTOCOLS`, :data:`SOURCE_PROTOCOLS`); one ``sources`` key serves
both, being the Retrieve Location UID of a manifest and the repositoryUniqueId of an XCA-I
request (xcai-digest.md §7).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from routing.credentials import AuthScheme, Credential, Secret
from routing.declare import FAILED, Reader, Report, setting
from routing.directory import DirectorySettings
from routing.errors import InvalidIdentifier
from routing.ids import HomeCommunityId, Oid
from routing.kinds import Flag, Map, Section, Text
from routing.upstream import (
    ORIGINS,
    AddressPolicy,
    DocumentNamespace,
    Limits,
    Protocol,
    RedirectPolicy,
    Timeouts,
    TlsProfile,
    Upstream,
)
from routing.urls import origin_of

__all__ = [
    "AddressPolicy",
    "AuthScheme",
    "COMMUNITY_PROTOCOLS",
    "Config",
    "Credential",
    "DirectorySettings",
    "DocumentNamespace",
    "Identity",
    "Limits",
    "OID_LIKE",
    "Protocol",
    "RedirectPolicy",
    "SOURCE_PROTOCOLS",
    "Secret",
    "Timeouts",
    "TlsProfile",
    "Upstream",
    "UpstreamName",
    "UrlPolicy",
    "origin_of",
]

IdT = TypeVar("IdT", bound=Oid)

OID_LIKE = r"(?:[Uu][Rr][Nn]:[Oo][Ii][Dd]:|[Oo][Ii][Dd]:)?(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*"
"""An OID as a document may write it (prefixes in any case), for the JSON Schema."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who this gateway is: its community and its identity in audit messages."""

    home_community_id: HomeCommunityId = setting(
        Text(label="OID", convert=HomeCommunityId, like=OID_LIKE),
        "The community this gateway stands for (urn:oid: and oid: prefixes are accepted).",
        required=True,
    )
    audit_source_id: str = setting(
        Text(),
        "How this gateway names itself in ATNA audit messages (AuditSourceID).",
        required=True,
    )
    enterprise_site_id: str | None = setting(
        Text(), "AuditEnterpriseSiteID in audit messages.", default=None
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlPolicy:
    """Which origins a caller-supplied ``retrieveurl`` may reach.

    An origin is ``scheme://host:port`` in lower case with the port always written.
    ``allow_upstream_origins`` also admits the origins of configured ``wado-rs`` upstreams.
    The default policy admits nothing: Retrieve URL mode is off until an operator opens it.
    """

    allowed_origins: frozenset[str] = setting(
        ORIGINS, "Origins a retrieveurl may name.", default=frozenset()
    )
    allow_upstream_origins: bool = setting(
        Flag(), "Also admit the origins of the configured wado-rs upstreams.", default=False
    )


@dataclass(frozen=True, slots=True)
class UpstreamName:
    """A route's target: the name of an upstream declared under ``upstreams`` (read before
    the routes) that speaks one of ``protocols``; ``routes`` names the section in problems."""

    protocols: frozenset[Protocol]
    routes: str
    label: str = "upstream name"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if not isinstance(value, str):
            raise ValueError("must name an upstream")
        upstreams = reader.scope.get("upstreams")
        upstream = upstreams.get(value) if isinstance(upstreams, Mapping) else None
        if not isinstance(upstream, Upstream):
            if reader.failed(f"upstreams.{value}"):
                return FAILED  # declared, and its own problems are reported
            raise ValueError(f"unknown upstream {value!r}")
        if upstream.protocol not in self.protocols:
            needed = " or ".join(p for p in Protocol if p in self.protocols)
            raise ValueError(
                f"upstream {value!r} speaks {upstream.protocol}; {self.routes} need {needed}"
            )
        return value

    def schema(self, default: object) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return ()


def _routes(
    id_type: Callable[[str], IdT], label: str, protocols: frozenset[Protocol], routes: str
) -> Map:
    """``communities`` or ``sources``: an identifier -> an upstream speaking one of
    ``protocols``."""

    def key(text: str) -> IdT:
        try:
            return id_type(text)
        except InvalidIdentifier as exc:
            raise ValueError(f"key is an {exc}") from None

    target = UpstreamName(protocols, routes)
    return Map(target, key=Text(label=label, convert=key, like=OID_LIKE))


COMMUNITY_PROTOCOLS = frozenset({Protocol.XC_WADO, Protocol.RAD_75})
"""What a ``communities`` entry may name: another community's responding gateway."""

SOURCE_PROTOCOLS = frozenset({Protocol.WADO_RS, Protocol.RAD_69})
"""What a ``sources`` entry may name: an Imaging Document Source."""


_UPSTREAM_NAME = Text(
    label="name",
    pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}",
    reason="name must be letters, digits, '.', '_' or '-' (at most 63)",
)


_MAX_ALIAS_LENGTH = 64


def _alias(identifier: str) -> str:
    if len(identifier) > _MAX_ALIAS_LENGTH:
        raise ValueError(f"identifier must be 1 to {_MAX_ALIAS_LENGTH} characters")
    if not identifier.isprintable():
        raise ValueError("identifier has control characters")
    if Oid.is_valid(identifier):
        raise ValueError("identifier is an OID, which routes as it is: aliases are for the others")
    return identifier


def _alias_target(text: str) -> Oid:
    try:
        return Oid(text)
    except InvalidIdentifier as exc:
        raise ValueError(f"{_STANDS_FOR}: {exc.reason}") from None


_STANDS_FOR = "must be the Retrieve Location UID (an OID) it stands for"
_ALIAS = Text(
    label="identifier",
    convert=_alias,
    expected=f"identifier must be 1 to {_MAX_ALIAS_LENGTH} characters",
)
_ALIAS_TARGET = Text(
    label="OID",
    convert=_alias_target,
    like=OID_LIKE,
    expected=f"{_STANDS_FOR}: must be a non-empty string",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """One complete, validated routing configuration: who this gateway is, its upstreams and
    the routes (``communities``, ``sources``) that name them.

    ``address_policy`` is read before ``upstreams``: an upstream without one takes it.
    """

    identity: Identity = setting(
        Section(Identity), "Who this gateway is.", key="self", required=True
    )
    address_policy: AddressPolicy = setting(
        Section(AddressPolicy),
        "Which addresses outbound connections may reach: for every upstream that names none of "
        "its own, and for targets that are no configured upstream (retrieveurl, allow-listed "
        "redirects).",
        factory=AddressPolicy,
    )
    upstreams: Mapping[str, Upstream] = setting(
        Map(Section(Upstream), key=_UPSTREAM_NAME, into="name", min_items=1, noun="upstream"),
        "Every peer, defined once under its name; communities and sources name it.",
        required=True,
    )
    communities: Mapping[HomeCommunityId, str] = setting(
        _routes(HomeCommunityId, "homeCommunityId", COMMUNITY_PROTOCOLS, "communities"),
        "homeCommunityId of a remote community -> its responding gateway (an xc-wado upstream, "
        "or a rad-75 one for XCA-I).",
        factory=dict,
    )
    sources: Mapping[Oid, str] = setting(
        _routes(Oid, "Retrieve Location UID", SOURCE_PROTOCOLS, "sources"),
        "Retrieve Location UID -> the Imaging Document Source that holds it (a wado-rs upstream, "
        "or a rad-69 one). The key is also the XDS-I.b repositoryUniqueId: the manifest's "
        "Retrieve Location UID (0040,E011) names the source, and an XCA-I request names it as "
        "RepositoryUniqueId, so one entry routes both RAD-160 and RAD-69/RAD-75 requests.",
        factory=dict,
    )
    url_policy: UrlPolicy = setting(
        Section(UrlPolicy), "Retrieve URL mode: where a retrieveurl may lead.", factory=UrlPolicy
    )
    location_aliases: Mapping[str, Oid] = setting(
        Map(_ALIAS_TARGET, key=_ALIAS, show=repr),
        "An opaque location identifier as manifests write it (ACME) -> the Retrieve Location UID "
        "it stands for; used where a manifest becomes RAD-160 requests (RAD-160 paths stay "
        "OID-only).",
        factory=dict,
    )
    directory: DirectorySettings | None = setting(
        Section(DirectorySettings),
        "A FHIR Endpoint directory asked for the Retrieve Location UIDs and homeCommunityIds "
        "that sources and communities do not name (docs/directory.md); absent: none.",
        default=None,
    )

    def __post_init__(self) -> None:
        # Read-only views, so a Config handed around cannot be changed behind the registry.
        for name in ("upstreams", "communities", "sources", "location_aliases"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def finish(self, report: Report) -> Config:
        own = self.identity.home_community_id
        if own in self.communities:
            reason = "is this gateway's own community (self.home_community_id)"
            report.problem(f"communities.{own}", reason)
        return self
