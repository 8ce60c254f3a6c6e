"""The optional ``directory`` section: a FHIR Endpoint directory consulted for Retrieve
Location UIDs and homeCommunityIds the static tables do not name (design.md §3; MADO Rev 1.1
§X.4.1.2 leaves the look-up to local configuration or a directory such as IHE mCSD).

This module is configuration only, and one pure helper: :func:`derived_upstream` turns an
address a directory returned into an :class:`~routing.upstream.Upstream`, checked by the same
URL rules as a configured base URL (:func:`routing.urlpolicy.vet_url`) and carrying the
section's TLS, timeouts, limits and address policy, so the relay treats it exactly like a
configured one. The look-up itself (I/O, the cache) lives in :mod:`gateway.directory`.
"""

from __future__ import annotations

from dataclasses import dataclass

from routing.declare import Report, setting
from routing.kinds import Flag, Integer, Number, Section, Text
from routing.upstream import AddressPolicy, Limits, Protocol, Timeouts, TlsProfile, Upstream
from routing.urlpolicy import UrlRefused, vet_url
from routing.urls import parse_base_url

__all__ = ["DIRECTORY_UPSTREAM", "DirectorySettings", "derived_upstream"]

DIRECTORY_UPSTREAM = "directory"
"""The name (and metric label) of every upstream a directory answer names: a bounded label."""


def _fhir_base(text: str) -> str:
    try:
        vet_url(text, allow_http=True)
    except UrlRefused as refusal:
        raise ValueError(f"{text!r} is refused by the URL policy ({refusal.detail})") from None
    return parse_base_url(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectorySettings:
    """Where the FHIR directory is, how long its answers are kept, and how the upstreams it
    names are reached (docs/directory.md).

    Answers are cached for ``ttl_s`` (an entry added to or removed from the directory takes
    effect within it, without a reload), "not found" for ``negative_ttl_s``; at most
    ``max_entries`` answers of each kind are kept (least recently used first out). While the
    directory cannot be reached, cached answers keep serving until they expire; after that a
    look-up fails with 503 ``directory-unavailable``.
    """

    base_url: str = setting(
        Text(label="URL", convert=_fhir_base),
        "FHIR R4 base URL of the directory (Endpoint and Organization resources).",
        required=True,
    )
    ttl_s: float = setting(Number(), "Seconds an answer is kept.", default=60.0)
    negative_ttl_s: float = setting(Number(), "Seconds a 'not found' is kept.", default=5.0)
    max_entries: int = setting(
        Integer(maximum=1_000_000),
        "Answers kept at most (and as many 'not found').",
        default=10_000,
    )
    connect_s: float = setting(Number(), "Seconds to connect to the directory.", default=2.0)
    request_s: float = setting(
        Number(), "Seconds one directory search may take in all.", default=5.0
    )
    tls: TlsProfile = setting(
        Section(TlsProfile), "TLS to the directory itself.", factory=TlsProfile
    )
    address_policy: AddressPolicy = setting(
        Section(AddressPolicy),
        "Addresses the directory itself may be reached at; absent: the top-level policy.",
        factory=AddressPolicy,
        inherit="address_policy",
    )
    upstream_allow_http: bool = setting(
        Flag(), "Accept http:// addresses from the directory (https only otherwise).", default=False
    )
    upstream_tls: TlsProfile = setting(
        Section(TlsProfile), "TLS to the upstreams the directory names.", factory=TlsProfile
    )
    upstream_timeouts: Timeouts = setting(
        Section(Timeouts), "Timeouts of the upstreams the directory names.", factory=Timeouts
    )
    upstream_limits: Limits = setting(
        Section(Limits), "Connection limits of each upstream it names.", factory=Limits
    )
    upstream_address_policy: AddressPolicy = setting(
        Section(AddressPolicy),
        "Addresses the upstreams the directory names may reach; absent: the top-level policy.",
        factory=AddressPolicy,
        inherit="address_policy",
    )

    def finish(self, report: Report) -> DirectorySettings:
        if self.request_s < self.connect_s:
            report.problem("request_s", "must not be less than connect_s")
        return self


def derived_upstream(settings: DirectorySettings, address: str, protocol: Protocol) -> Upstream:
    """The upstream for a directory ``address`` (an Endpoint.address) speaking ``protocol``
    (``wado-rs`` for a source, ``xc-wado`` for a community).

    Raises :class:`~routing.urlpolicy.UrlRefused` when the address fails the URL rules every
    outbound URL passes (scheme, credentials, control characters, malformed host or port), and
    ``ValueError`` when it is no base URL (a query or fragment). The address policy applies at
    connection time, as for a configured upstream.
    """
    vet_url(address, allow_http=settings.upstream_allow_http)
    return Upstream(
        name=DIRECTORY_UPSTREAM,
        protocol=protocol,
        base_urls=(parse_base_url(address),),
        tls=settings.upstream_tls,
        timeouts=settings.upstream_timeouts,
        limits=settings.upstream_limits,
        address_policy=settings.upstream_address_policy,
    )
