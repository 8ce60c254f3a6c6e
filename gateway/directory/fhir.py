"""The directory searches and how their answers are read: pure, no I/O.

A Retrieve Location UID is looked up as an Endpoint (FHIR R4 §8.14; MADO Rev 1.1 §X.4.1.2,
the ``MadoWadoEndpoint`` of a manifest)::

    GET [base]Endpoint?identifier=urn:ietf:rfc:3986|urn:oid:{rluid}
        &connection-type=http://terminology.hl7.org/CodeSystem/endpoint-connection-type|dicom-wado-rs
        &status=active

FHIR defines no search parameter for the MADO Retrieve Location UID extension, so the
directory carries the UID as an Endpoint ``identifier`` as well (system ``urn:ietf:rfc:3986``,
value ``urn:oid:{rluid}``, the FHIR convention for an OID). An answer is accepted only when
each Endpoint read back is active, of connection type ``dicom-wado-rs``, names the UID (in
its identifier or in the MADO extension) and names no other UID in the extension.

A homeCommunityId is looked up as an Organization with its Endpoints (IHE mCSD)::

    GET [base]Organization?identifier=urn:ietf:rfc:3986|urn:oid:{hcid}
        &_include=Organization:endpoint

and the community's responding gateway is each active ``dicom-wado-rs`` Endpoint a matching
Organization references (RAD-160 is DICOMweb). Several Endpoints become the failover
addresses of one upstream, in the order of their resource ids, at most
:data:`MAX_ADDRESSES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "CONNECTION_TYPES",
    "MAX_ADDRESSES",
    "RLUID_EXTENSION",
    "community_addresses",
    "community_search",
    "source_addresses",
    "source_search",
]

RLUID_EXTENSION = (
    "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoRetrieveLocationUIDExtension"
)
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
_WADO_RS = "dicom-wado-rs"
_URI = "urn:ietf:rfc:3986"
MAX_ADDRESSES = 4


def _oid_token(oid: str) -> str:
    return f"{_URI}|urn:oid:{oid}"


def source_search(base_url: str, rluid: str) -> str:
    """The search URL for the Endpoint of Retrieve Location UID ``rluid`` (an OID)."""
    query = urlencode(
        {
            "identifier": _oid_token(rluid),
            "connection-type": f"{CONNECTION_TYPES}|{_WADO_RS}",
            "status": "active",
        }
    )
    return f"{base_url}Endpoint?{query}"


def community_search(base_url: str, hcid: str) -> str:
    """The search URL for the Organization of homeCommunityId ``hcid`` and its Endpoints."""
    query = urlencode({"identifier": _oid_token(hcid), "_include": "Organization:endpoint"})
    return f"{base_url}Organization?{query}"


def source_addresses(bundle: object, rluid: str) -> tuple[str, ...]:
    """The addresses of the Endpoints of ``rluid`` in a search ``bundle``; empty: not found.
    Raises ``ValueError`` when ``bundle`` is no searchset Bundle."""
    endpoints = [r for r in _resources(bundle) if r.get("resourceType") == "Endpoint"]
    return _addresses(e for e in endpoints if _names_location(e, rluid))


def community_addresses(bundle: object, hcid: str) -> tuple[str, ...]:
    """The addresses of the responding gateway of ``hcid`` in a search ``bundle``; empty: not
    found. Raises ``ValueError`` when ``bundle`` is no searchset Bundle."""
    resources = _resources(bundle)
    wanted: set[str] = set()
    for organization in resources:
        if organization.get("resourceType") != "Organization":
            continue
        if organization.get("active") is False or not _has_identifier(organization, hcid):
            continue
        for reference in _list(organization.get("endpoint")):
            if isinstance(reference, Mapping) and isinstance(reference.get("reference"), str):
                wanted.add(reference["reference"])
    endpoints = (
        r
        for r in resources
        if r.get("resourceType") == "Endpoint" and f"Endpoint/{r.get('id')}" in wanted
    )
    return _addresses(endpoints)


def _resources(bundle: object) -> list[Mapping[str, Any]]:
    if not isinstance(bundle, Mapping) or bundle.get("resourceType") != "Bundle":
        raise ValueError("the directory answer is not a Bundle")
    out = []
    for entry in _list(bundle.get("entry")):
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(resource, Mapping):
            out.append(resource)
    return out


def _addresses(endpoints: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    usable = [e for e in endpoints if _usable(e)]
    usable.sort(key=lambda e: str(e.get("id", "")))
    addresses: list[str] = []
    for endpoint in usable:
        address = endpoint["address"]
        if address not in addresses:
            addresses.append(address)
    return tuple(addresses[:MAX_ADDRESSES])


def _usable(endpoint: Mapping[str, Any]) -> bool:
    connection = endpoint.get("connectionType")
    return (
        endpoint.get("status") == "active"
        and isinstance(connection, Mapping)
        and connection.get("code") == _WADO_RS
        and connection.get("system", CONNECTION_TYPES) == CONNECTION_TYPES
        and isinstance(endpoint.get("address"), str)
    )


def _names_location(endpoint: Mapping[str, Any], rluid: str) -> bool:
    named = {_bare(x.get("valueString")) for x in _extensions(endpoint)}
    named |= {_bare(x.get("valueOid")) for x in _extensions(endpoint)}
    named.discard(None)
    if named and named != {rluid}:
        return False  # the extension names another location: an inconsistent entry
    return rluid in named or _has_identifier(endpoint, rluid)


def _extensions(endpoint: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        x
        for x in _list(endpoint.get("extension"))
        if isinstance(x, Mapping) and x.get("url") == RLUID_EXTENSION
    ]


def _has_identifier(resource: Mapping[str, Any], oid: str) -> bool:
    for identifier in _list(resource.get("identifier")):
        if (
            isinstance(identifier, Mapping)
            and identifier.get("system") == _URI
            and _bare(identifier.get("value")) == oid
        ):
            return True
    return False


def _bare(value: object) -> str | None:
    """An OID without its ``urn:oid:`` prefix; None for a non-string."""
    if not isinstance(value, str):
        return None
    return value[8:] if value.lower().startswith("urn:oid:") else value


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
