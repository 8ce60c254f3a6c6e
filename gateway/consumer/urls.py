"""Turning planned retrievals into URLs (MADO X.4.1.2 addressing modes; MADO Appendix XA).

Two targets:

* through an initiating gateway — ``{gateway}/homeCommunityId/{hcid}/RetrieveLocationUID/
  {rluid}/studies/…`` (RAD-160), with ``?retrieveurl=`` only when asked for, because a
  responding gateway's default URL policy refuses it;
* directly — the series' Retrieve URL (``https://`` added when it has no scheme) followed by
  ``studies/…`` (RAD-107).

A request naming several instances becomes one instance-level URL per instance.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from gateway.consumer import NoRoute
from mado.plan import RetrieveRequest
from routing.ids import HomeCommunityId
from routing.registry import normalise_retrieve_url

__all__ = ["Target", "urls_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where retrievals go: an initiating gateway for a community, or the Retrieve URLs."""

    gateway: str | None = None  # XC-WADO endpoint, ending in "/"
    home_community_id: HomeCommunityId | None = None
    send_retrieve_url: bool = False

    @property
    def through_gateway(self) -> bool:
        return self.gateway is not None


def urls_for(request: RetrieveRequest, target: Target) -> list[str]:
    """The URLs that retrieve ``request``; raises :class:`NoRoute` when it cannot be addressed."""
    resources = _resources(request)
    if target.gateway is not None and target.home_community_id is not None:
        if request.retrieve_location_uid is None:
            raise NoRoute(f"series {request.series_uid or '?'} has no Retrieve Location UID")
        base = (
            f"{target.gateway}homeCommunityId/{target.home_community_id}"
            f"/RetrieveLocationUID/{request.retrieve_location_uid}/"
        )
        query = ""
        if target.send_retrieve_url and request.retrieve_url:
            query = "?retrieveurl=" + quote(request.retrieve_url, safe="")
        return [base + resource + query for resource in resources]
    if request.retrieve_url is None:
        raise NoRoute(
            f"series {request.series_uid or request.study_uid} has no Retrieve URL: "
            "retrieve through a gateway (--gateway and --home-community-id)"
        )
    base = normalise_retrieve_url(request.retrieve_url)
    return [base + resource for resource in resources]


def _resources(request: RetrieveRequest) -> list[str]:
    study = f"studies/{request.study_uid}"
    if request.series_uid is None:
        return [study]
    series = f"{study}/series/{request.series_uid}"
    if not request.instance_uids:
        return [series]
    return [f"{series}/instances/{uid}" for uid in request.instance_uids]
