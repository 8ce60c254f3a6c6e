"""Active participants of the gateway's audit messages (PS3.15 A.5.3, DICOM Instances
Transferred and Accessed): an upstream a leg talked to, the system that asked, and the
gateway itself.

Pure: no I/O, no asyncio (design.md §9 rule 1).
"""

from __future__ import annotations

from ipaddress import ip_address

from gateway.audit import codes
from gateway.audit.model import NetworkAccessPointType, Participant
from gateway.exchange import Exchange, Leg
from routing.model import Identity
from routing.urls import parse_url

__all__ = [
    "access_point",
    "gateway_participant",
    "leg_participant",
    "requester_participant",
    "upstream_participant",
]


def upstream_participant(exchange: Exchange) -> Participant:
    """The source of a relayed transfer: :func:`leg_participant` of the exchange's last leg."""
    return leg_participant(exchange.leg)


def leg_participant(leg: Leg | None, *, role: codes.Code = codes.SOURCE_ROLE) -> Participant:
    """The upstream of ``leg`` in ``role`` (not the requestor): the URL of the leg's last
    request without its query (for a SOAP leg, the endpoint URI), its host as the network
    access point, the upstream's configured name as the alternative user id."""
    url = leg.url if leg is not None else None
    if leg is None or url is None:
        return Participant(
            user_id=leg.upstream if leg is not None else "unknown",
            is_requestor=False,
            roles=(role,),
        )
    # The query may carry a caller's retrieveurl; the path already names the resource.
    try:
        parts = parse_url(url)
    except ValueError:  # never for a URL the relay vetted; the record must be written anyway
        parts = None
    user_id = leg.upstream if parts is None else parts.without_query
    point, point_type = access_point(None if parts is None else parts.host)
    return Participant(
        user_id=user_id,
        alternative_user_id=leg.upstream,
        is_requestor=False,
        roles=(role,),
        access_point=point,
        access_point_type=point_type,
    )


def requester_participant(exchange: Exchange) -> Participant:
    """The requesting system: its verified certificate subject when mutual TLS gave one
    (who), else its address; the address is always the network access point (where)."""
    client = (exchange.client or "").strip() or None
    point, point_type = access_point(client)
    return Participant(
        user_id=exchange.client_subject or client or "unknown",
        is_requestor=True,
        roles=(codes.DESTINATION_ROLE,),
        access_point=point,
        access_point_type=point_type,
    )


def gateway_participant(identity: Identity, *, role: codes.Code, is_requestor: bool) -> Participant:
    """This gateway in ``role``, named as in AuditSourceIdentification (``audit_source_id``);
    no network access point: the exchange does not record the address it was reached at."""
    return Participant(user_id=identity.audit_source_id, is_requestor=is_requestor, roles=(role,))


def access_point(host: str | None) -> tuple[str | None, NetworkAccessPointType | None]:
    """A host as NetworkAccessPointID with its type code: an IP address or a machine name."""
    if not host:
        return None, None
    bare = host.strip("[]")
    try:
        ip_address(bare)
    except ValueError:
        return host, NetworkAccessPointType.MACHINE_NAME
    return bare, NetworkAccessPointType.IP_ADDRESS
