"""TLS contexts, both directions, and what a TLS failure and a client certificate say.

Outbound: one client context per upstream TLS profile (:func:`client_context`): the peer is
verified against the profile's CA bundle (or the system store), TLS 1.2 is the minimum
(PS3.18 §6 and ITI TF-2 Appendix Z.8 recommend TLS 1.2 or later), and a client certificate
and key are presented for mutual TLS when the profile has them.

Inbound: :func:`server_context` serves the gateway's own certificate, optionally verifying
client certificates against a CA bundle (ATNA Secure Node style mutual TLS, required or
optional). :func:`peer_subject` reads the verified client certificate's subject as an RFC 4514
string, and :func:`subject_allowed` matches it against the configured consumers.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import aiohttp

from routing.model import TlsProfile

__all__ = [
    "client_context",
    "parse_subject",
    "peer_subject",
    "server_context",
    "subject_allowed",
    "tls_failure",
]

_SHORT_NAMES = {
    "commonname": "CN",
    "cn": "CN",
    "organizationname": "O",
    "o": "O",
    "organizationalunitname": "OU",
    "ou": "OU",
    "countryname": "C",
    "c": "C",
    "localityname": "L",
    "l": "L",
    "stateorprovincename": "ST",
    "st": "ST",
    "domaincomponent": "DC",
    "dc": "DC",
    "emailaddress": "EMAILADDRESS",
    "serialnumber": "SERIALNUMBER",
}


def client_context(profile: TlsProfile) -> ssl.SSLContext:
    """Client TLS context for one upstream: verify the peer, TLS 1.2 or later, optional mTLS.

    Raises ``ssl.SSLError`` or ``OSError`` for unusable files (the loader has checked them).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=profile.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if profile.cert_file and profile.key_file:
        context.load_cert_chain(profile.cert_file, profile.key_file)
    return context


def server_context(
    *, cert_file: str, key_file: str, client_ca_file: str | None, require_client_cert: bool
) -> ssl.SSLContext:
    """Server TLS context: our certificate, TLS 1.2 or later, client certificates verified
    against ``client_ca_file`` (required or optional) when one is given."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    if client_ca_file is not None:
        context.load_verify_locations(cafile=client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return context


def tls_failure(exc: BaseException, *, https: bool = False) -> str | None:
    """A short reason (``certificate-verify-failed``…) when ``exc`` came from TLS, else None.

    With TLS 1.3 a server checks the client certificate after the handshake has completed
    on the client's side, and a refusal reaches the client as a bare close: the server's
    alert is not flushed by asyncio. So on an ``https`` connection, a close or reset before
    any answer is reported as ``peer-closed-after-handshake`` (most often: the upstream wants
    a client certificate the TLS profile does not present, or does not trust it).
    """
    closed = isinstance(exc, aiohttp.ServerDisconnectedError) or (
        isinstance(exc, aiohttp.ClientOSError)  # a reset (RST) rather than a FIN
        and not isinstance(exc, aiohttp.ClientConnectorError)  # the TCP connect itself failed
    )
    if https and closed and tls_failure(exc) is None:
        return "peer-closed-after-handshake"
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return "certificate-verify-failed"
        if isinstance(current, ssl.SSLError):
            reason = getattr(current, "reason", None) or "handshake-failed"
            return str(reason).lower().replace("_", "-")
        if getattr(current, "certificate_error", None) is not None:
            return "certificate-verify-failed"  # aiohttp's ClientConnectorCertificateError
        nested = getattr(current, "os_error", None)
        if isinstance(nested, BaseException) and id(nested) not in seen:
            current = nested
            continue
        current = current.__cause__ or current.__context__
    return None


def peer_subject(peercert: object) -> str | None:
    """The subject of a verified peer certificate (``ssl.getpeercert()``) as RFC 4514 text,
    most specific first (``CN=gateway-b,O=Community B,C=FR``); None without a certificate."""
    if not isinstance(peercert, dict) or not peercert.get("subject"):
        return None
    pairs = [
        (_SHORT_NAMES.get(name.lower(), name), value)
        for rdn in peercert["subject"]
        for name, value in rdn
    ]
    return ",".join(f"{name}={value}" for name, value in reversed(pairs))


def parse_subject(text: str) -> frozenset[tuple[str, str]]:
    """A subject as a set of ``(attribute, value)``: order and spacing do not matter.

    Raises ``ValueError`` for text that is not ``name=value`` pairs separated by commas.
    """
    pairs = set()
    for item in text.split(","):
        name, equals, value = item.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise ValueError(f"{item.strip()!r} is not name=value")
        pairs.add((_SHORT_NAMES.get(name.strip().lower(), name.strip().upper()), value.strip()))
    return frozenset(pairs)


def subject_allowed(subject: str | None, allowed: Iterable[frozenset[tuple[str, str]]]) -> bool:
    """Whether ``subject`` is exactly one of the allowed subjects (same attributes, values)."""
    if subject is None:
        return False
    try:
        mine = parse_subject(subject)
    except ValueError:
        return False
    return any(mine == entry for entry in allowed)
