"""An upstream: one peer this gateway sends requests to, defined once and named by routes.

Base URLs in failover order, what it speaks, TLS, timeouts, connection limits, redirect and
address policies, and the credential the gateway presents. Each value is frozen and hashable,
so an :class:`Upstream` can key a connection pool; each field is declared once
(:mod:`routing.declare`) for the loader, the JSON Schema and the reference. Durations are
seconds and end in ``_s``.
"""

from __future__ import annotations

import enum
import ipaddress
import ssl
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import ClassVar

from routing.credentials import AuthSettings, Credential
from routing.declare import Report, setting
from routing.fields import first_line
from routing.kinds import (
    EXISTING_FILE,
    Choice,
    Flag,
    Integer,
    ListOf,
    Number,
    Section,
    Text,
    with_text,
)
from routing.urlpolicy import UrlRefused, vet_url
from routing.urls import base_url, origin, origin_of

__all__ = [
    "AddressPolicy",
    "DocumentNamespace",
    "IpNetwork",
    "Limits",
    "ORIGINS",
    "Protocol",
    "RedirectPolicy",
    "Timeouts",
    "TlsProfile",
    "Upstream",
]


class Protocol(enum.StrEnum):
    """What an upstream speaks."""

    WADO_RS = "wado-rs"  # an Imaging Document Source (RAD-107)
    XC_WADO = "xc-wado"  # another community's responding gateway (RAD-160)
    RAD_69 = "rad-69"  # an Imaging Document Source over SOAP
    RAD_75 = "rad-75"  # another community's responding gateway over SOAP

    @property
    def soap(self) -> bool:
        """Whether the upstream is a SOAP endpoint (XCA-I) rather than a DICOMweb base."""
        return self in _SOAP


_SOAP = frozenset({Protocol.RAD_69, Protocol.RAD_75})


class DocumentNamespace(enum.StrEnum):
    """Which namespace the ``DocumentRequest`` element of an outbound RAD-69/RAD-75 request is
    written in (xcai-digest.md §2.4). The IHE schema derives SeriesRequest from the ITI-43
    request type, so the element is in xds-b; IPF's schema declares a local element in the
    xdsi-b namespace instead, and a peer that validates against it refuses the xds-b one. Its
    children stay in xds-b either way."""

    XDSB = "xds-b"
    XDSIB = "xdsi-b"

    @property
    def uri(self) -> str:
        """The namespace URI the element is written in."""
        return _NAMESPACE_URIS[self]


_NAMESPACE_URIS = {
    DocumentNamespace.XDSB: "urn:ihe:iti:xds-b:2007",
    DocumentNamespace.XDSIB: "urn:ihe:rad:xdsi-b:2009",
}


ORIGINS = ListOf(Text(label="origin", convert=origin), collect=frozenset)
"""A list of ``scheme://host[:port]`` written as URLs, read as origins (``origin_of``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsProfile:
    """How to verify an upstream and, for mutual TLS, how to present ourselves to it.

    The files are loaded with the configuration, so a broken one is a configuration problem
    rather than a 502 later.
    """

    ca_file: str | None = setting(
        EXISTING_FILE,
        "PEM CA bundle that verifies the upstream; absent: the system trust store.",
        default=None,
    )
    cert_file: str | None = setting(
        EXISTING_FILE, "Client certificate (PEM) for mutual TLS; goes with key_file.", default=None
    )
    key_file: str | None = setting(EXISTING_FILE, "Private key (PEM) of cert_file.", default=None)

    def finish(self, report: Report) -> TlsProfile:
        if report.given("cert_file") != report.given("key_file"):
            report.problem("", "cert_file and key_file go together (mutual TLS needs both)")
        elif not report.failed():
            self._load(report)
        return self

    def _load(self, report: Report) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if self.ca_file is not None:
            try:
                context.load_verify_locations(cafile=self.ca_file)
            except (ssl.SSLError, OSError, ValueError) as exc:
                report.problem("ca_file", f"is not a usable PEM CA bundle ({first_line(exc)})")
        if self.cert_file is not None and self.key_file is not None:
            try:
                context.load_cert_chain(self.cert_file, self.key_file)
            except (ssl.SSLError, OSError, ValueError) as exc:
                reason = f"certificate and key do not load ({first_line(exc)})"
                report.problem("cert_file", reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """Connect and idle-read timeouts. There is deliberately no total deadline: a 10 GB study
    that keeps flowing must not be cut; one that stops flowing for ``read_idle_s`` is."""

    REFUSED_KEYS: ClassVar = MappingProxyType(
        {"total_s": "is not supported: streams have idle timeouts, never a deadline"}
    )

    connect_s: float = setting(
        Number(), "Seconds to open a connection (each attempt).", default=5.0
    )
    read_idle_s: float = setting(
        Number(), "Seconds without a byte from the upstream that end a stream.", default=60.0
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Connection pool limits for one upstream.

    ``keepalive_s`` is how long an idle pooled connection is kept for reuse. It must stay
    below the upstream's own keep-alive timeout, or a request may be written on a connection
    the upstream has just closed (Orthanc closes idle connections after one second).
    """

    max_connections: int = setting(Integer(), "Connections open at once.", default=100)
    keepalive_s: float = setting(
        Number(),
        "Seconds an idle connection is kept for reuse: below the upstream's own keep-alive.",
        default=0.5,
    )


IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_NETWORK = Text(
    label="CIDR network",
    convert=with_text(
        lambda text: ipaddress.ip_network(text, strict=True),
        "{text!r} is not a CIDR network such as 10.1.0.0/16 ({reason})",
    ),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AddressPolicy:
    """Which resolved addresses an outbound connection may reach (design.md §5).

    Public (globally routable) addresses are always allowed. Every other class is refused
    unless a flag opens it: loopback (127.0.0.0/8, ::1), private (RFC 1918, unique-local
    fc00::/7, shared 100.64.0.0/10 and the other non-global ranges), link-local
    (169.254.0.0/16, fe80::/10). Cloud metadata, multicast, unspecified and reserved addresses
    have no flag: only ``allowed_networks`` (CIDR blocks admitted whatever their class) opens
    them. The default refuses everything that is not public.
    """

    allow_loopback: bool = setting(Flag(), "Allow 127.0.0.0/8 and ::1.", default=False)
    allow_private: bool = setting(
        Flag(),
        "Allow RFC 1918, fc00::/7, 100.64.0.0/10 and other non-global ranges.",
        default=False,
    )
    allow_link_local: bool = setting(Flag(), "Allow 169.254.0.0/16 and fe80::/10.", default=False)
    allowed_networks: tuple[IpNetwork, ...] = setting(
        ListOf(_NETWORK),
        "CIDR blocks allowed whatever their class (as narrow as possible).",
        default=(),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RedirectPolicy:
    """How an upstream's redirects are followed (Envoy's internal redirect policy, stricter).

    At most ``max_hops`` redirects (0: none is followed); the target must be https unless
    ``allow_http``; its origin must be a configured upstream's or in ``allowed_origins``
    (``scheme://host:port``, as :func:`origin_of` writes it).
    """

    max_hops: int = setting(
        Integer(minimum=0, maximum=10), "Redirects followed at most (0: none).", default=2
    )
    allow_http: bool = setting(Flag(), "Follow a redirect to an http:// URL.", default=False)
    allowed_origins: frozenset[str] = setting(
        ORIGINS,
        "Origins a redirect may reach besides the configured upstreams'.",
        default=frozenset(),
    )


def _upstream_url(text: str) -> str:
    """The URL as written, checked as a base URL; :meth:`Upstream.finish` adds the ``/`` a
    DICOMweb base needs (a SOAP endpoint is used as written)."""
    base_url(text)
    try:
        vet_url(text, allow_http=True)  # the same checks every outbound URL passes
    except UrlRefused as refusal:
        raise ValueError(f"{text!r} is refused by the URL policy ({refusal.detail})") from None
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Upstream:
    """A named peer: one or more base URLs tried in order until one answers.

    A DICOMweb upstream's (``wado-rs``, ``xc-wado``) base URLs end in ``/``; a SOAP
    upstream's (``rad-69``, ``rad-75``) are endpoint URLs, kept as written, since a SOAP
    stack may not answer the same path with a ``/`` appended.

    ``forward_authorization``: the consumer's ``Authorization`` header is sent to this
    upstream (never across a redirect to another origin). Off by default: a token meant for
    one community does not travel to another unless an operator says so.

    ``auth``: the gateway's own credential for this upstream, sent only to its own
    :attr:`origins` (never to a redirect target elsewhere, nor to another upstream a redirect
    leads to). It replaces the consumer's ``Authorization``, so the loader refuses it
    together with ``forward_authorization``.
    """

    name: str  # its key under ``upstreams``
    protocol: Protocol = setting(Choice.of(Protocol), "What the upstream speaks.", required=True)
    base_urls: tuple[str, ...] = setting(
        ListOf(
            Text(label="URL", convert=_upstream_url), min_items=1, few="must list at least one URL"
        ),
        "Absolute http(s) base URLs, tried in this order (the later ones are failovers); for "
        "rad-69 and rad-75, the SOAP endpoint URLs, used as written.",
        required=True,
    )
    tls: TlsProfile = setting(Section(TlsProfile), "TLS to the upstream.", factory=TlsProfile)
    timeouts: Timeouts = setting(Section(Timeouts), "Timeouts.", factory=Timeouts)
    limits: Limits = setting(Section(Limits), "Connection pool limits.", factory=Limits)
    redirects: RedirectPolicy = setting(
        Section(RedirectPolicy), "Which redirects are followed.", factory=RedirectPolicy
    )
    address_policy: AddressPolicy = setting(
        Section(AddressPolicy),
        "Which addresses this upstream may reach; replaces the top-level one as a whole.",
        factory=AddressPolicy,
        inherit="address_policy",
    )
    forward_authorization: bool = setting(
        Flag(), "Send the consumer's Authorization header to this upstream.", default=False
    )
    auth: Credential | None = setting(
        Section(AuthSettings), "The gateway's own credential for this upstream.", default=None
    )
    document_request_namespace: DocumentNamespace = setting(
        Choice.of(DocumentNamespace),
        "Namespace of DocumentRequest in the RAD-69/RAD-75 requests sent to this upstream "
        "(IPF-based peers with schema validation want xdsi-b).",
        default=DocumentNamespace.XDSB,
    )

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(origin_of(url) for url in self.base_urls)

    def finish(self, report: Report) -> Upstream:
        if self.forward_authorization and report.given("auth"):
            reason = "cannot be true together with auth (the configured credential replaces it)"
            report.problem("forward_authorization", reason)
        if report.given("document_request_namespace") and not self.protocol.soap:
            reason = f"applies to rad-69 and rad-75 upstreams, not to {self.protocol}"
            report.problem("document_request_namespace", reason)
        if self.protocol.soap:
            return self
        # A DICOMweb base: paths are appended to it (routing.registry.Route.urls).
        bases = tuple(url if url.endswith("/") else url + "/" for url in self.base_urls)
        return replace(self, base_urls=bases)
