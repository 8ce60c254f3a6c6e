"""Process settings: the ``server`` section of the configuration file.

The routing sections are read by :mod:`routing.loader`; this module declares the part that
only the running process cares about (where to listen, under which path, how it is seen from
outside, TLS, what a request may carry, rate limits, the XCA-I endpoint and its spool), one
declaration per field (:mod:`routing.declare`), read with the same field-path error reporting.
Sizes are bytes and end in ``_bytes``; durations are seconds and end in ``_s``.
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.relay.tls import parse_subject, server_context
from routing.accept import FORBIDDEN_TRANSFER_SYNTAXES
from routing.declare import FAILED, Report, read, setting
from routing.errors import InvalidIdentifier
from routing.ids import Uid
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
from routing.urls import base_url, origin

__all__ = [
    "ADMIN_PATHS",
    "ANY_TRANSFER_SYNTAXES",
    "AdminListener",
    "CorsPolicy",
    "PEER_RATE_LIMIT",
    "RESERVED_PATHS",
    "SPOOL_FOLDER",
    "InboundLimits",
    "ManifestCacheSettings",
    "PeerGateways",
    "RateLimit",
    "ServerSettings",
    "ServerTls",
    "SpoolSettings",
    "XcaSettings",
    "parse_server_settings",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

_SUBJECTS = ListOf(
    Text(label="subject (RFC 4514)", convert=with_text(parse_subject, "not a subject: {reason}"))
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTls:
    """HTTPS for the gateway itself; with ``client_ca_file``, client certificates are verified
    (required unless ``require_client_cert`` is false). ``allowed_client_subjects``, when
    non-empty, admits only clients whose certificate subject is one of them.

    A failed inbound handshake is a Security Alert (checklist item 53), at most one per peer
    address every ``handshake_alert_interval_s`` and at most ``handshake_alerts_per_interval``
    in all over that time; every failure is counted either way."""

    cert_file: str = setting(EXISTING_FILE, "The gateway's certificate (PEM).", required=True)
    key_file: str = setting(EXISTING_FILE, "Its private key (PEM).", required=True)
    client_ca_file: str | None = setting(
        EXISTING_FILE,
        "CA bundle (PEM) that verifies client certificates: mutual TLS.",
        default=None,
    )
    require_client_cert: bool = setting(
        Flag(), "With client_ca_file: refuse a client without a certificate.", default=True
    )
    allowed_client_subjects: tuple[frozenset[tuple[str, str]], ...] = setting(
        _SUBJECTS, "When non-empty, the only client certificate subjects admitted.", default=()
    )
    handshake_timeout_s: float = setting(
        Number(), "Seconds a client has to complete the TLS handshake.", default=60.0
    )
    handshake_alert_interval_s: float = setting(
        Number(), "Seconds between two Security Alerts for one peer address.", default=60.0
    )
    handshake_alerts_per_interval: int = setting(
        Integer(), "Security Alerts at most, all peers together, per interval.", default=100
    )

    def finish(self, report: Report) -> ServerTls | object:
        """Refuses subjects without a CA to check them; loads the files once, so a broken
        one is a configuration problem rather than a failure to start."""
        if self.allowed_client_subjects and self.client_ca_file is None:
            report.problem(
                "allowed_client_subjects", "needs client_ca_file (certificates to check)"
            )
        try:
            server_context(
                cert_file=self.cert_file,
                key_file=self.key_file,
                client_ca_file=self.client_ca_file,
                require_client_cert=self.require_client_cert,
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            report.problem("", f"certificate, key or client CA do not load ({exc})")
            return FAILED
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundLimits:
    """What a request may carry. Retrieve requests have no body, so the default body limit
    is 0 bytes; ``POST /mado/retrieve`` may carry a manifest of up to ``max_manifest_bytes``,
    and a request to the XCA-I endpoint its SOAP envelope (``xca.max_envelope_bytes``).
    ``max_header_bytes`` counts every header name and value together."""

    max_url_bytes: int = setting(Integer(minimum=256), "Request line URL, in bytes.", default=4096)
    max_header_bytes: int = setting(
        Integer(minimum=1024), "Every header name and value together, in bytes.", default=16384
    )
    max_headers: int = setting(Integer(minimum=8), "Header fields.", default=64)
    max_body_bytes: int = setting(
        Integer(minimum=0),
        "Body of any request but POST /mado/retrieve and XCA-I, in bytes.",
        default=0,
    )
    max_manifest_bytes: int = setting(
        Integer(minimum=1024),
        "Manifest posted to /mado/retrieve, in bytes (413 past it).",
        default=32 * 1024 * 1024,
    )


def _cors_origin(text: str) -> str:
    return text if text == "*" else origin(text)


@dataclass(frozen=True, slots=True, kw_only=True)
class CorsPolicy:
    """Browser viewers (MADO §X.5 suggests CORS): which page origins may call the gateway."""

    allowed_origins: frozenset[str] = setting(
        ListOf(Text(label="origin or *", convert=_cors_origin), collect=frozenset),
        "Page origins allowed to call the gateway; * allows any.",
        default=frozenset(),
    )
    max_age_s: float = setting(
        Number(), "Seconds a browser may cache a preflight answer.", default=600.0
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Per client (certificate subject, else address): a token bucket of ``burst`` requests
    refilled at ``requests_per_s``, and at most ``max_streams`` responses at once."""

    # Sized for one viewer loading a large study instance by instance (a burst of a thousand
    # requests) while still stopping a runaway client. An initiating gateway that speaks for
    # a whole community is not one viewer: it has its own class (PeerGateways).
    requests_per_s: float = setting(Number(), "Bucket refill rate, per second.", default=200.0)
    burst: int = setting(Integer(), "Bucket size: requests at once after a pause.", default=1000)
    max_streams: int = setting(Integer(), "Responses in flight at once.", default=64)
    max_clients: int = setting(
        Integer(minimum=100),
        "Buckets kept; the least recently seen client is forgotten first.",
        default=10000,
    )


PEER_RATE_LIMIT = RateLimit(requests_per_s=5000.0, burst=50000, max_streams=1024, max_clients=100)
"""The default limits of each peer gateway: above what one gateway process can serve (see
the README), so a community's viewers are never throttled here (their own initiating gateway
limits each of them), while a peer stuck in a loop still meets a ceiling."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerGateways:
    """Initiating gateways of other communities, known by their verified client certificate
    subject (RFC 4514, matched as ``allowed_client_subjects`` is). Each one has its own
    bucket and stream count under ``rate_limit`` instead of the per-client limits."""

    subjects: tuple[frozenset[tuple[str, str]], ...] = setting(
        _SUBJECTS,
        "Certificate subjects of partner gateways (needs tls.client_ca_file).",
        default=(),
    )
    rate_limit: RateLimit = setting(
        Section(RateLimit), "The limits of each peer gateway.", default=PEER_RATE_LIMIT
    )


_BASE_PATH = r"(?:/[A-Za-z0-9._~-]+)+"


def _path(example: str) -> Text:
    """A path of one or more segments, written with or without a final ``/``."""

    def path(text: str) -> str:
        path = text.rstrip("/")
        if re.fullmatch(_BASE_PATH, path) is None:
            raise ValueError(f"must be a path such as {example} (letters, digits, . _ ~ -)")
        return path

    return Text(label="path", convert=path, like=_BASE_PATH + "/*")


RESERVED_PATHS = ("/mado/retrieve", "/livez", "/readyz", "/metrics")
"""The fixed paths of the route table (:func:`gateway.app.route_table`), which the XCA-I
endpoint may not take (``/metrics`` is the admin listener's, and stays out of the public
port's way too)."""

ADMIN_PATHS = (
    "/metrics",
    "/livez",
    "/readyz",
    "/admin/routes",
    "/admin/config",
    "/admin/upstreams",
    "/openapi.json",
)
"""What the admin listener serves (:mod:`gateway.edge.admin`)."""

SPOOL_FOLDER = "mado-gateway-spool"
"""The spool's folder under the system's temporary directory when none is configured."""

ANY_TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian, which every source can give
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
)
"""What ``transfer-syntax=*`` ("as stored") becomes in a TransferSyntaxUIDList, which can only
name syntaxes (xcai-digest.md §8.1). Explicit VR Little Endian first: a source returns an
uncompressed object unchanged and a compressed one decompressed, never re-compressed; then
lossless syntaxes only — nothing lossy is ever asked for on a consumer's behalf."""


def _transfer_syntax(text: str) -> Uid:
    try:
        uid = Uid(text)
    except InvalidIdentifier as exc:
        raise ValueError(f"is not a transfer syntax UID: {exc.reason}") from None
    if uid in FORBIDDEN_TRANSFER_SYNTAXES:
        # The answer is relayed as DICOMweb parts, which cannot carry it (PS3.18 §8.7.3.5.2).
        raise ValueError(f"{uid} is not available via DICOMweb")
    return uid


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolSettings:
    """The disk spool of XCA-I answers: where a document waits when the SOAP envelope must
    state every outcome before the first document is sent. Its files are unlinked as soon as
    they are open and never outlive their request; ``max_bytes`` bounds the process (each
    worker process has its own), ``max_request_bytes`` one inbound request. A document past
    either is reported as an error, not spooled.

    xcai-digest.md §6.3 option E; design.md §4 (spool to a bounded file, never to memory).
    """

    directory: str | None = setting(
        Text(label="directory"),
        "Where spool files are created (made 0700 when missing; relative to the working "
        "directory).",
        default=None,
        shown=f"`{SPOOL_FOLDER}` in `$TMPDIR`",
    )
    max_bytes: int = setting(
        Integer(), "Bytes spooled at most, every request of the process together.", default=4 * GiB
    )
    max_request_bytes: int = setting(
        Integer(), "Bytes spooled at most for one inbound request.", default=1 * GiB
    )

    @property
    def path(self) -> Path:
        """The directory, the default one when none is configured."""
        if self.directory is None:
            return Path(tempfile.gettempdir()) / SPOOL_FOLDER
        return Path(self.directory)

    def finish(self, report: Report) -> SpoolSettings:
        if self.max_request_bytes > self.max_bytes:
            report.problem("max_request_bytes", "must not be more than max_bytes")
        where = self.directory
        if where is not None and os.path.exists(where) and not os.path.isdir(where):
            report.problem("directory", f"{where!r} is not a directory")
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class XcaSettings:
    """XCA-I: RAD-69 and RAD-75 over SOAP 1.2 and MTOM/XOP (IHE RAD TF-3 4.69, 4.75).
    ``path`` is the one SOAP endpoint: a request is routed by its ``wsa:Action``, not by its
    path. An answer's SOAP envelope comes before its documents, so what cannot be streamed is
    bounded here."""

    path: str = setting(
        _path("/xcai"),
        "The SOAP endpoint path of RAD-69 and RAD-75 requests (routed on wsa:Action).",
        default="/xcai",
    )
    max_envelope_bytes: int = setting(
        Integer(minimum=1024),
        "The SOAP envelope (MTOM root part) of a request, and of an upstream's answer.",
        default=4 * MiB,
    )
    max_inline_bytes: int = setting(
        Integer(minimum=1024),
        "An upstream answer without MTOM, its documents inline in base64 (read whole).",
        default=64 * MiB,
    )
    concurrency: int = setting(
        Integer(maximum=256),
        "Upstream requests at once for one inbound request: RAD-75 per community, RAD-69 per "
        "repository, WADO-RS GET per document.",
        default=8,
    )
    any_transfer_syntaxes: tuple[str, ...] = setting(
        ListOf(
            Text(label="UID", convert=_transfer_syntax),
            min_items=1,
            few="must list at least one transfer syntax UID",
        ),
        "What transfer-syntax=* becomes in a TransferSyntaxUIDList, in this order.",
        default=ANY_TRANSFER_SYNTAXES,
        shown=", ".join(f"`{uid}`" for uid in ANY_TRANSFER_SYNTAXES),
    )
    spool: SpoolSettings = setting(
        Section(SpoolSettings), "Where answers wait, and how much.", factory=SpoolSettings
    )

    def finish(self, report: Report) -> XcaSettings:
        if self.max_inline_bytes < self.max_envelope_bytes:
            # An answer without MTOM is one envelope, documents included.
            report.problem("max_inline_bytes", "must not be less than max_envelope_bytes")
        seen: set[str] = set()
        for index, uid in enumerate(self.any_transfer_syntaxes):
            if uid in seen:
                report.problem(f"any_transfer_syntaxes[{index}]", f"repeats {uid}")
            seen.add(uid)
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestCacheSettings:
    """The instance lists of the manifests ``POST /mado/retrieve`` has read, kept so that a
    study- or series-level RAD-160 to a community or source that speaks only XCA-I can be
    bridged: RAD-69/RAD-75 name each instance, and nothing else says which a study holds
    (xcai-digest.md §7). A study leaves when it is older than ``ttl_s``, or least recently
    used when the cache holds ``max_studies`` studies or ``max_instances`` instances; a
    study of more than ``max_instances`` instances is not kept. Each worker process has its
    own cache. ``max_studies`` 0 turns it off."""

    max_studies: int = setting(Integer(minimum=0), "Studies kept at most.", default=1000)
    max_instances: int = setting(
        Integer(), "Instances kept at most, every study together.", default=100_000
    )
    ttl_s: float = setting(Number(), "Seconds a study is kept after its manifest.", default=3600.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminListener:
    """The admin listener: ``/metrics``, ``/admin/routes``, ``/admin/config``,
    ``/admin/upstreams``, ``/livez`` and ``/readyz`` on an address of their own (loopback by
    default), so that a partner community reaching the public port sees none of them. With
    several workers every worker listens on it (SO_REUSEPORT) and any of them answers for all.
    """

    enabled: bool = setting(Flag(), "Open the admin listener.", default=True)
    host: str = setting(
        Text(label="address"),
        "Its listen address (keep it loopback or private).",
        default="127.0.0.1",
    )
    port: int = setting(Integer(minimum=0, maximum=65535), "Its listen port.", default=8081)


def _state_default() -> str:
    """systemd's ``StateDirectory=`` when set, else the working directory."""
    return os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "."


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Where and how the gateway serves.

    ``base_path`` is the XC-WADO endpoint path: RAD-160 requests are
    ``{base_path}/homeCommunityId/…``. ``public_url`` is the gateway's endpoint as consumers
    reach it (through any load balancer); metadata URLs are rewritten to it. When unset it
    is derived from each request's scheme and ``Host``.
    """

    host: str = setting(Text(label="address"), "Listen address.", default="127.0.0.1")
    port: int = setting(Integer(minimum=0, maximum=65535), "Listen port.", default=8080)
    workers: int | None = setting(
        Integer(minimum=1, maximum=256),
        "Worker processes sharing the port (SO_REUSEPORT); `serve --workers` overrides it.",
        default=None,
        shown="the number of CPU cores",
    )
    drain_s: float = setting(
        Number(exclusive=False),
        "Seconds in-flight requests have to finish after SIGTERM before they are aborted.",
        default=30.0,
    )
    state_directory: str | None = setting(
        Text(label="directory"),
        "Where the process keeps its state (audit journal and file, metrics of the workers, "
        "last upstream outcomes); relative audit paths are relative to it.",
        default=None,
        shown="`$STATE_DIRECTORY` (systemd), else the working directory",
    )
    admin: AdminListener = setting(
        Section(AdminListener), "The admin listener.", factory=AdminListener
    )
    base_path: str = setting(
        _path("/wado"),
        "The XC-WADO endpoint path: {base_path}/homeCommunityId/….",
        default="/wado",
    )
    public_url: str | None = setting(
        Text(label="URL", convert=base_url),
        "The endpoint as consumers reach it; absent: from each request's scheme and Host.",
        default=None,
    )
    read_buffer_bytes: int = setting(
        Integer(minimum=65536), "Bytes read from an upstream at a time.", default=256 * 1024
    )
    log_level: str = setting(
        Choice(("DEBUG", "INFO", "WARNING", "ERROR"), fold=str.upper),
        "Log level.",
        default="INFO",
    )
    tls: ServerTls | None = setting(
        Section(ServerTls), "HTTPS, and mutual TLS; absent: plain HTTP.", default=None
    )
    limits: InboundLimits = setting(
        Section(InboundLimits), "What a request may carry.", factory=InboundLimits
    )
    cors: CorsPolicy = setting(Section(CorsPolicy), "Browser viewers.", factory=CorsPolicy)
    rate_limit: RateLimit = setting(
        Section(RateLimit), "The limits of each client.", factory=RateLimit
    )
    peer_gateways: PeerGateways = setting(
        Section(PeerGateways), "Partner gateways and their own limits.", factory=PeerGateways
    )
    xca: XcaSettings = setting(
        Section(XcaSettings), "XCA-I: the SOAP endpoint and its bounds.", factory=XcaSettings
    )
    manifest_cache: ManifestCacheSettings = setting(
        Section(ManifestCacheSettings),
        "Instance lists of manifests, for study- and series-level retrieves over XCA-I.",
        factory=ManifestCacheSettings,
    )

    @property
    def state_path(self) -> Path:
        """The state directory, its default resolved."""
        return Path(self.state_directory or _state_default())

    @property
    def worker_count(self) -> int:
        """``workers``, its default (the CPU cores this process may use) resolved."""
        if self.workers is not None:
            return self.workers
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1

    def finish(self, report: Report) -> ServerSettings:
        """A peer gateway must be a client this gateway can identify and admits; the XCA-I
        endpoint must be a path no other route takes; the admin listener must not share the
        public port."""
        self._check_peers(report)
        admin = self.admin
        if admin.enabled and admin.port == self.port and admin.port != 0:
            report.problem("admin.port", f"is the public port ({self.port}): choose another")
        if self.workers is not None and self.workers > 1:
            if self.port == 0:
                report.problem("port", "must be a fixed port with several workers")
            if admin.enabled and admin.port == 0:
                report.problem("admin.port", "must be a fixed port with several workers")
        endpoint = self.xca.path
        if endpoint == self.base_path or endpoint.startswith(self.base_path + "/"):
            report.problem("xca.path", f"must not be base_path ({self.base_path}) or below it")
        elif endpoint in RESERVED_PATHS:
            report.problem("xca.path", f"{endpoint} is taken by another route")
        return self

    def _check_peers(self, report: Report) -> None:
        subjects, tls = self.peer_gateways.subjects, self.tls
        if subjects and (tls is None or tls.client_ca_file is None):
            report.problem(
                "peer_gateways.subjects", "needs server.tls.client_ca_file (certificates to check)"
            )
        elif tls is not None and tls.allowed_client_subjects:
            for subject in subjects:
                if subject not in tls.allowed_client_subjects:
                    names = ",".join(f"{k}={v}" for k, v in sorted(subject))
                    refused = "is not on server.tls.allowed_client_subjects: it would be refused"
                    report.problem("peer_gateways.subjects", f"{names} {refused}")


def parse_server_settings(
    document: Mapping[str, Any], *, source: str = "configuration"
) -> ServerSettings:
    """Read ``server`` from a parsed document. Raises :class:`ConfigError` with every problem."""
    return read(ServerSettings, document.get("server"), "server", source=source)
