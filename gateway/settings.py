"""Process settings: the ``server`` section of the configuration file.

The routing sections are read by :mod:`routing.loader`; this module reads the part that only
the running process cares about (where to listen, under which path, how it is seen from
outside) with the same field-path error reporting.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.tls import parse_subject, server_context
from routing.errors import ConfigError, ConfigProblem
from routing.fields import Fields
from routing.loader import parse_base_url
from routing.model import origin_of

__all__ = [
    "CorsPolicy",
    "PEER_RATE_LIMIT",
    "InboundLimits",
    "PeerGateways",
    "RateLimit",
    "ServerSettings",
    "ServerTls",
    "parse_server_settings",
]

_BASE_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerTls:
    """HTTPS for the gateway itself; with ``client_ca_file``, client certificates are verified
    (required unless ``require_client_cert`` is false). ``allowed_client_subjects``, when
    non-empty, admits only clients whose certificate subject is one of them.

    A failed inbound handshake is a Security Alert (checklist item 53), at most one per peer
    address every ``handshake_alert_interval_s`` and at most ``handshake_alerts_per_interval``
    in all over that time; every failure is counted either way."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    require_client_cert: bool = True
    allowed_client_subjects: tuple[frozenset[tuple[str, str]], ...] = ()
    handshake_timeout_s: float = 60.0
    handshake_alert_interval_s: float = 60.0
    handshake_alerts_per_interval: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundLimits:
    """What a request may carry. Retrieve requests have no body, so the default body limit
    is 0 bytes; the one request with a body, ``POST /mado/retrieve``, may carry a manifest
    of up to ``max_manifest_bytes``. ``max_header_bytes`` counts every header name and value
    together."""

    max_url_bytes: int = 4096
    max_header_bytes: int = 16384
    max_headers: int = 64
    max_body_bytes: int = 0
    max_manifest_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class CorsPolicy:
    """Browser viewers (MADO §X.5 suggests CORS): which page origins may call the gateway."""

    allowed_origins: frozenset[str] = frozenset()  # scheme://host:port, or "*"
    max_age_s: float = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """Per client (certificate subject, else address): a token bucket of ``burst`` requests
    refilled at ``requests_per_s``, and at most ``max_streams`` responses at once."""

    # Sized for one viewer loading a large study instance by instance (a burst of a thousand
    # requests) while still stopping a runaway client. An initiating gateway that speaks for
    # a whole community is not one viewer: it has its own class (PeerGateways).
    requests_per_s: float = 200.0
    burst: int = 1000
    max_streams: int = 64
    max_clients: int = 10000  # buckets kept; the least recently seen is forgotten first


PEER_RATE_LIMIT = RateLimit(requests_per_s=5000.0, burst=50000, max_streams=1024, max_clients=100)
"""The default limits of each peer gateway: above what one gateway process can serve (see
the README), so a community's viewers are never throttled here (their own initiating gateway
limits each of them), while a peer stuck in a loop still meets a ceiling."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerGateways:
    """Initiating gateways of other communities, known by their verified client certificate
    subject (RFC 4514, matched as ``allowed_client_subjects`` is). Each one has its own
    bucket and stream count under ``rate_limit`` instead of the per-client limits."""

    subjects: tuple[frozenset[tuple[str, str]], ...] = ()
    rate_limit: RateLimit = PEER_RATE_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Where and how the gateway serves.

    ``base_path`` is the XC-WADO endpoint path: RAD-160 requests are
    ``{base_path}/homeCommunityId/…``. ``public_url`` is the gateway's endpoint as consumers
    reach it (through any load balancer); metadata URLs are rewritten to it. When unset it
    is derived from each request's scheme and ``Host``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = "/wado"
    public_url: str | None = None
    read_buffer_bytes: int = 256 * 1024
    log_level: str = "INFO"
    tls: ServerTls | None = None
    limits: InboundLimits = field(default_factory=InboundLimits)
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    rate_limit: RateLimit = field(default_factory=RateLimit)
    peer_gateways: PeerGateways = field(default_factory=PeerGateways)


def parse_server_settings(
    document: Mapping[str, Any], *, source: str = "configuration"
) -> ServerSettings:
    """Read ``server`` from a parsed document. Raises :class:`ConfigError` with every problem."""
    problems: list[ConfigProblem] = []
    fields = Fields(document.get("server"), "server", problems)
    default = ServerSettings()
    host = fields.text("host", default.host) or default.host
    port = fields.integer("port", default.port, minimum=0)
    if port > 65535:
        fields.problem("port", "must be at most 65535")
    base_path = fields.text("base_path", default.base_path) or default.base_path
    base_path = base_path.rstrip("/")
    if _BASE_PATH.fullmatch(base_path) is None:
        fields.problem("base_path", "must be a path such as /wado (letters, digits, . _ ~ -)")
    public_url = fields.text("public_url")
    if public_url is not None:
        try:
            public_url = parse_base_url(public_url)
        except ValueError as exc:
            fields.problem("public_url", f"{public_url!r} {exc}")
    read_buffer = fields.integer("read_buffer_bytes", default.read_buffer_bytes, minimum=65536)
    log_level = (fields.text("log_level", default.log_level) or default.log_level).upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fields.problem("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    tls = _server_tls(fields.section("tls"))
    limits = _limits(fields.section("limits"))
    cors = _cors(fields.section("cors"))
    rate_limit = _rate_limit(fields.section("rate_limit"), RateLimit())
    peer_gateways = _peer_gateways(fields.section("peer_gateways"), tls)
    fields.finish()
    if problems:
        raise ConfigError(problems, source)
    return ServerSettings(
        host=host,
        port=port,
        base_path=base_path,
        public_url=public_url,
        read_buffer_bytes=read_buffer,
        log_level=log_level,
        tls=tls,
        limits=limits,
        cors=cors,
        rate_limit=rate_limit,
        peer_gateways=peer_gateways,
    )


def _server_tls(fields: Fields) -> ServerTls | None:
    if not fields.valid:
        return None
    files: dict[str, str | None] = {}
    for name in ("cert_file", "key_file", "client_ca_file"):
        file = fields.text(name, required=name != "client_ca_file")
        if file is not None and not os.path.isfile(file):
            fields.problem(name, f"file {file!r} does not exist")
            file = None
        files[name] = file
    require = fields.flag("require_client_cert", default=True)
    default = ServerTls(cert_file="", key_file="")
    timeout = fields.number("handshake_timeout_s", default.handshake_timeout_s)
    interval = fields.number("handshake_alert_interval_s", default.handshake_alert_interval_s)
    most = fields.integer("handshake_alerts_per_interval", default.handshake_alerts_per_interval)
    subjects = _subjects(fields, "allowed_client_subjects")
    if subjects and files["client_ca_file"] is None:
        fields.problem("allowed_client_subjects", "needs client_ca_file (certificates to check)")
    fields.finish()
    cert, key = files["cert_file"], files["key_file"]
    if cert is None or key is None:
        return None
    try:
        server_context(
            cert_file=cert,
            key_file=key,
            client_ca_file=files["client_ca_file"],
            require_client_cert=require,
        )
    except (ssl.SSLError, OSError, ValueError) as exc:
        fields.problem("", f"certificate, key or client CA do not load ({exc})")
        return None
    return ServerTls(
        cert_file=cert,
        key_file=key,
        client_ca_file=files["client_ca_file"],
        require_client_cert=require,
        allowed_client_subjects=tuple(subjects),
        handshake_timeout_s=timeout,
        handshake_alert_interval_s=interval,
        handshake_alerts_per_interval=most,
    )


def _limits(fields: Fields) -> InboundLimits:
    default = InboundLimits()
    value = InboundLimits(
        max_url_bytes=fields.integer("max_url_bytes", default.max_url_bytes, minimum=256),
        max_header_bytes=fields.integer("max_header_bytes", default.max_header_bytes, minimum=1024),
        max_headers=fields.integer("max_headers", default.max_headers, minimum=8),
        max_body_bytes=fields.integer("max_body_bytes", default.max_body_bytes, minimum=0),
        max_manifest_bytes=fields.integer(
            "max_manifest_bytes", default.max_manifest_bytes, minimum=1024
        ),
    )
    fields.finish()
    return value


def _cors(fields: Fields) -> CorsPolicy:
    default = CorsPolicy()
    origins = set()
    for path, text in fields.strings("allowed_origins"):
        if text == "*":
            origins.add(text)
            continue
        try:
            origins.add(origin_of(parse_base_url(text)))
        except ValueError as exc:
            fields.problems.append(ConfigProblem(path=path, reason=f"{text!r} {exc}"))
    value = CorsPolicy(
        allowed_origins=frozenset(origins),
        max_age_s=fields.number("max_age_s", default.max_age_s),
    )
    fields.finish()
    return value


def _rate_limit(fields: Fields, default: RateLimit) -> RateLimit:
    value = RateLimit(
        requests_per_s=fields.number("requests_per_s", default.requests_per_s),
        burst=fields.integer("burst", default.burst),
        max_streams=fields.integer("max_streams", default.max_streams),
        max_clients=fields.integer("max_clients", default.max_clients, minimum=100),
    )
    fields.finish()
    return value


def _peer_gateways(fields: Fields, tls: ServerTls | None) -> PeerGateways:
    subjects = _subjects(fields, "subjects")
    if subjects and (tls is None or tls.client_ca_file is None):
        fields.problem("subjects", "needs server.tls.client_ca_file (certificates to check)")
    elif tls is not None and tls.allowed_client_subjects:
        for subject in subjects:
            if subject not in tls.allowed_client_subjects:
                names = ",".join(f"{k}={v}" for k, v in sorted(subject))
                fields.problem(
                    "subjects",
                    f"{names} is not on server.tls.allowed_client_subjects: it would be refused",
                )
    value = PeerGateways(
        subjects=tuple(subjects),
        rate_limit=_rate_limit(fields.section("rate_limit"), PEER_RATE_LIMIT),
    )
    fields.finish()
    return value


def _subjects(fields: Fields, key: str) -> list[frozenset[tuple[str, str]]]:
    subjects = []
    for where, text in fields.strings(key):
        try:
            subjects.append(parse_subject(text))
        except ValueError as exc:
            fields.problems.append(ConfigProblem(path=where, reason=f"not a subject: {exc}"))
    return subjects
