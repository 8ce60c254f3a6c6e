"""Turning planned retrievals into URLs (MADO X.4.1.2 addressing modes; MADO Appendix XA).

Two targets:

* through an initiating gateway — ``{gateway}/homeCommunityId/{hcid}/RetrieveLocationUID/
  {rluid}/studies/…`` (RAD-160), with ``?retrieveurl=`` only when asked for, because a
  responding gateway's default URL policy refuses it;
* directly — the series' Retrieve URL (``https://`` added when it has no scheme) followed by
  ``studies/…`` (RAD-107).

Through a gateway, the Retrieve Location UID segment is chosen in this order:

1. the series' Retrieve Location UID, when it is an OID;
2. the OID an alias maps its opaque location identifier to (``ACME`` in the MADO FHIR sample;
   the gateway's ``location_aliases`` or ``fetch --location ACME=OID``);
3. otherwise, when the series has a usable Retrieve URL, Retrieve URL mode: the segment is
   :data:`NO_LOCATION` (the nil-UUID OID ``2.25.0``; the RAD-160 grammar needs an OID there and
   the responding gateway routes by ``retrieveurl`` alone) and ``?retrieveurl=`` carries the
   URL, subject to the responding gateway's URL policy;
4. otherwise :class:`~mado.errors.UnroutableSeries`, naming the series and the identifier.

A request naming several instances becomes one instance-level URL per instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from urllib.parse import quote

from mado.errors import UnroutableSeries
from mado.model import Manifest
from mado.plan import RetrieveRequest
from routing.errors import RetrieveUrlRefused
from routing.ids import HomeCommunityId, Oid
from routing.registry import normalise_retrieve_url

__all__ = ["NO_LOCATION", "Target", "instance_urls", "urls_for"]

NO_LOCATION = Oid("2.25.0")
"""The Retrieve Location UID segment of a Retrieve URL mode request that has no usable one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where retrievals go: an initiating gateway for a community, or the Retrieve URLs.

    ``locations`` maps opaque location identifiers (as written in manifests) to the Retrieve
    Location UIDs they stand for.
    """

    gateway: str | None = None  # XC-WADO endpoint, ending in "/"
    home_community_id: HomeCommunityId | None = None
    send_retrieve_url: bool = False
    locations: Mapping[str, Oid] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def through_gateway(self) -> bool:
        return self.gateway is not None


def urls_for(request: RetrieveRequest, target: Target) -> list[str]:
    """The URLs that retrieve ``request``; raises :class:`UnroutableSeries` when it cannot be
    addressed (see the module contract)."""
    resources = _resources(request)
    if target.gateway is not None and target.home_community_id is not None:
        rluid, retrieve_url = _location(request, target)
        base = (
            f"{target.gateway}homeCommunityId/{target.home_community_id}"
            f"/RetrieveLocationUID/{rluid}/"
        )
        query = "" if retrieve_url is None else "?retrieveurl=" + quote(retrieve_url, safe="")
        return [base + resource + query for resource in resources]
    if request.retrieve_url is None:
        raise UnroutableSeries(
            _where(request),
            request.opaque_location,
            "no Retrieve URL: retrieve it through a gateway "
            "(--gateway and --home-community-id)",
        )
    try:
        base = normalise_retrieve_url(request.retrieve_url)
    except RetrieveUrlRefused as exc:
        raise UnroutableSeries(
            _where(request), request.opaque_location, f"its Retrieve URL is unusable ({exc})"
        ) from None
    return [base + resource for resource in resources]


def instance_urls(request: RetrieveRequest, manifest: Manifest, target: Target) -> list[str]:
    """The instance-level URLs of every instance ``manifest`` lists for a study- or
    series-level ``request`` (every series of the study, or its one series), in manifest
    order: what is asked instead when a gateway cannot list them (its community speaks
    XCA-I, which retrieves instance by instance). Raises as :func:`urls_for` does."""
    return [
        url
        for series in manifest.series
        if (request.series_uid is None or series.uid == request.series_uid) and series.instances
        for url in urls_for(
            replace(
                request,
                series_uid=series.uid,
                instance_uids=tuple(i.sop_instance_uid for i in series.instances),
            ),
            target,
        )
    ]


def _location(request: RetrieveRequest, target: Target) -> tuple[Oid, str | None]:
    """The Retrieve Location UID segment and the Retrieve URL to send along, if any."""
    wanted_url = request.retrieve_url if target.send_retrieve_url else None
    if request.retrieve_location_uid is not None:
        return request.retrieve_location_uid, wanted_url
    opaque = request.opaque_location
    if opaque is not None and opaque in target.locations:
        return target.locations[opaque], wanted_url
    if request.retrieve_url is not None:
        try:
            normalise_retrieve_url(request.retrieve_url)
        except RetrieveUrlRefused:
            pass  # unusable: nothing to fall back to
        else:
            return NO_LOCATION, request.retrieve_url
    if opaque is None:
        reason = "no Retrieve Location UID and no usable Retrieve URL"
    else:
        reason = (
            f"its Retrieve Location identifier {opaque!r} is not an OID and no alias maps it, "
            "and it has no usable Retrieve URL to fall back to; map it to the Retrieve "
            f"Location UID it stands for (gateway: location_aliases; fetch: --location "
            f"{opaque}=OID)"
        )
    raise UnroutableSeries(_where(request), opaque, reason)


def _where(request: RetrieveRequest) -> str:
    if request.series_uid is not None:
        return f"series {request.series_uid}"
    return f"study {request.study_uid} (all its series)"


def _resources(request: RetrieveRequest) -> list[str]:
    study = f"studies/{request.study_uid}"
    if request.series_uid is None:
        return [study]
    series = f"{study}/series/{request.series_uid}"
    if not request.instance_uids:
        return [series]
    return [f"{series}/instances/{uid}" for uid in request.instance_uids]
