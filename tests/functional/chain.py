"""Two gateway processes chained in front of the session's Orthanc: community B's initiating
gateway → community A's responding gateway → Orthanc. Used by the chain and fetch tests."""

from __future__ import annotations

from dataclasses import dataclass

from peers.gateway import GatewayProcess
from peers.orthanc import OrthancServer

__all__ = ["COMMUNITY_A", "COMMUNITY_B", "RLUID", "Chain"]

from peers.chain import COMMUNITY_A, COMMUNITY_B, RLUID


@dataclass
class Chain:
    responding: GatewayProcess
    initiating: GatewayProcess
    orthanc: OrthancServer

    def via_gateways(self, tail: str, hcid: str = COMMUNITY_A) -> str:
        return (
            f"{self.initiating.endpoint}homeCommunityId/{hcid}/RetrieveLocationUID/{RLUID}/{tail}"
        )

    def direct(self, tail: str) -> str:
        return self.orthanc.dicomweb_url + tail
