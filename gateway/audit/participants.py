"""Active participants of the gateway's audit messages (PS3.15 A.5.3, DICOM Instances
Transferred, Accessed and Begin Transferring): the upstream a leg talked to, the system that
asked, and the gateway itself.

Every message describes one transaction leg and has exactly one Source (110153) and one
Destination (110152), following the images rather than the HTTP direction (the party that
sends the instances is the Source, as IHE's retrieve audit messages have it):

=====================================  ====================  ==========================
leg                                    Source (110153)       Destination (110152)
=====================================  ====================  ==========================
inbound: the gateway answers           the gateway           the requester (requestor)
outbound: the gateway asks an upstream the upstream          the gateway (requestor)
=====================================  ====================  ==========================

Identifiers never leave through a participant: an upstream is named by its endpoint
(:func:`endpoint_of`: no query, no credentials, nothing from the first patient-data or
routing identifier segment on), so a UserID is the same for every retrieval from that
endpoint.

Pure: no I/O, no asyncio (design.md §9 rule 1).
"""

from __future__ import annotations

import functools
from ipaddress import ip_address

from gateway.audit import codes
from gateway.audit.model import NetworkAccessPointType, Participant
from gateway.exchange import Exchange, Leg
from routing.model import Identity
from routing.urls import Url, parse_url

__all__ = [
    "access_point",
    "endpoint_of",
    "gateway_participant",
    "leg_participant",
    "requester_participant",
]

# Path segments from which on a URL names data (RAD-160 and WADO-RS, PS3.18 §10.4) or a
# community's routing (design.md §2), compared in lower case: the endpoint ends before them.
_IDENTIFIER_SEGMENTS = frozenset({"homecommunityid", "studies", "study"})


def endpoint_of(url: str) -> str:
    """``url`` as the endpoint it reached: scheme, host and port, and the path up to (not
    including) its first ``homeCommunityId``, ``studies`` or ``study`` segment; no query,
    fragment or credentials. Raises ``ValueError`` for what :func:`routing.urls.parse_url`
    cannot split."""
    return _endpoint(parse_url(url))


def _endpoint(parts: Url) -> str:
    path = parts.path
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if segment.lower() in _IDENTIFIER_SEGMENTS:
            path = "/".join(segments[:index]) + "/"
            break
    # netloc as written, less any user:password@ in front of the host.
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{netloc}{path}"


def leg_participant(leg: Leg | None, *, role: codes.Code = codes.SOURCE_ROLE) -> Participant:
    """The upstream of ``leg`` in ``role`` (not the requestor): :func:`endpoint_of` the URL
    of the leg's last request as UserID, its host as the network access point, the
    upstream's configured name as AlternativeUserID."""
    url = leg.url if leg is not None else None
    if leg is None or url is None:
        return Participant(
            user_id=leg.upstream if leg is not None else "unknown",
            is_requestor=False,
            roles=(role,),
        )
    try:
        parts = parse_url(url)
    except ValueError:  # never for a URL the relay vetted; the record must be written anyway
        user_id, host = leg.upstream, None
    else:
        user_id, host = _endpoint(parts), parts.host
    point, point_type = access_point(host)
    return Participant(
        user_id=user_id,
        alternative_user_id=leg.upstream,
        is_requestor=False,
        roles=(role,),
        access_point=point,
        access_point_type=point_type,
    )


def requester_participant(
    exchange: Exchange, *, role: codes.Code = codes.DESTINATION_ROLE
) -> Participant:
    """The requesting system (the requestor): who, when known — its verified certificate
    subject (mutual TLS) — else its address; the address is always the network access
    point (where)."""
    client = (exchange.client or "").strip() or None
    point, point_type = access_point(client)
    return Participant(
        user_id=exchange.client_subject or client or "unknown",
        is_requestor=True,
        roles=(role,),
        access_point=point,
        access_point_type=point_type,
    )


def gateway_participant(
    identity: Identity, *, role: codes.Code, is_requestor: bool, host: str | None = None
) -> Participant:
    """This gateway in ``role``, named as in AuditSourceIdentification
    (``audit_source_id``), with ``host`` (its machine name or address) as the network
    access point when given."""
    point, point_type = access_point(host)
    return Participant(
        user_id=identity.audit_source_id,
        is_requestor=is_requestor,
        roles=(role,),
        access_point=point,
        access_point_type=point_type,
    )


def access_point(host: str | None) -> tuple[str | None, NetworkAccessPointType | None]:
    """A host as NetworkAccessPointID with its type code: an IP address or a machine name."""
    if not host:
        return None, None
    return _access_point(host)


@functools.lru_cache(maxsize=1024)  # a few clients, upstreams and the gateway itself
def _access_point(host: str) -> tuple[str, NetworkAccessPointType]:
    bare = host.strip("[]")
    try:
        ip_address(bare)
    except ValueError:
        return host, NetworkAccessPointType.MACHINE_NAME
    return bare, NetworkAccessPointType.IP_ADDRESS
