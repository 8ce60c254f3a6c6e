"""Active participants of the gateway's audit messages (PS3.15 A.5.3, DICOM Instances
Transferred): the source a leg read from and the system that asked.

Pure: no I/O, no asyncio (design.md §9 rule 1).
"""

from __future__ import annotations

from ipaddress import ip_address

from gateway.audit import codes
from gateway.audit.model import NetworkAccessPointType, Participant
from gateway.exchange import Exchange
from routing.urls import parse_url

__all__ = ["access_point", "requester_participant", "upstream_participant"]


def upstream_participant(exchange: Exchange) -> Participant:
    """The source of a transfer: the URL of the leg's last request (no query), its host as
    the network access point; the upstream's configured name as the alternative user id."""
    leg = exchange.leg
    url = leg.url if leg is not None else None
    if leg is None or url is None:
        return Participant(
            user_id=leg.upstream if leg is not None else "unknown",
            is_requestor=False,
            roles=(codes.SOURCE_ROLE,),
        )
    # The query may carry a caller's retrieveurl; the path already names the study.
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
        roles=(codes.SOURCE_ROLE,),
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
