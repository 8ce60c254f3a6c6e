"""The authority (``host[:port]``) under which a consumer reached the gateway.

Used for the gateway's public URL when ``server.public_url`` is not configured. The ``Host``
header is the client's to write, and it ends up inside every metadata document this request
returns, so it is read strictly (RFC 9110 §7.2, RFC 3986 §3.2.2):

* a DNS name (letters, digits, ``-`` and ``_`` in labels of 1 to 63 characters, at most 253 in
  all, a trailing dot allowed), a dotted IPv4 address, or a bracketed IPv6 address (no zone);
  names are judged by the URL policy's own host rule (:func:`routing.urlpolicy.vet_host`), so
  a name that hides an IPv4 address (``0x7f.1``, ``1.2.3.4.``) is refused here too;
* an optional port of 1 to 65535; an empty port (``host:``) counts as none.

Anything else — quotes, spaces, ``@``, ``/``, ``%``, a second ``Host`` — is refused
(:class:`ValueError`; a 400 for the client, as RFC 9112 §3.2 requires), never reflected.

A ``Host`` without a port does not mean the scheme's default port here: dicomweb-client and
others send the bare host name whatever the port. The port is the one the connection
actually arrived on (the listening socket's), left out only when it is the scheme's default.
Without any ``Host`` (HTTP/1.0) the socket's own address is used.

Pure: the caller passes the header values and the socket name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from routing.urlpolicy import UrlRefused, vet_host
from routing.urls import DEFAULT_PORTS

__all__ = ["public_authority"]

_HOST = re.compile(
    r"(?:\[(?P<ip6>[0-9A-Fa-f:.]{2,45})\]|(?P<name>[A-Za-z0-9._-]{1,254}))(?::(?P<port>[0-9]{0,5}))?"
)


def public_authority(host_headers: Sequence[str], *, scheme: str, local: tuple[str, int]) -> str:
    """``host[:port]`` for URLs that lead back to this gateway (module docstring).

    ``local`` is the socket's own ``(address, port)``. Raises ``ValueError`` for a malformed
    or repeated ``Host``.
    """
    if len(host_headers) > 1:
        raise ValueError("more than one Host header")
    if not host_headers:
        host, port = _literal(local[0]), local[1]
    else:
        host, given = _parse(host_headers[0].strip())
        port = local[1] if given is None else given
    return host if port == DEFAULT_PORTS.get(scheme) else f"{host}:{port}"


def _parse(value: str) -> tuple[str, int | None]:
    match = _HOST.fullmatch(value)
    if match is None:
        raise ValueError("not a host name or address")
    port = int(match["port"]) if match["port"] else None
    if port is not None and not 0 < port <= 65535:
        raise ValueError("not a port number")
    if match["ip6"] is not None:
        try:
            address = ipaddress.IPv6Address(match["ip6"])
        except ValueError:
            raise ValueError("not an IPv6 address") from None
        return f"[{address.compressed}]", port
    return _name(match["name"]), port


def _name(name: str) -> str:
    name = name.lower()
    if len(name.removesuffix(".")) > 253:
        raise ValueError("not a host name")
    try:
        vet_host(name, name)  # the URL policy's rule: a hidden IP address is no name
    except UrlRefused as exc:
        raise ValueError(f"not a host name ({exc.detail})") from None
    return name


def _literal(address: str) -> str:
    if ":" not in address:
        return address
    return f"[{ipaddress.IPv6Address(address.partition('%')[0]).compressed}]"
