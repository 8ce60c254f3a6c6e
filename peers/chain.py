"""Two communities on one machine: A's responding gateway in front of A's Imaging Document
Source, and B's initiating gateway that knows A by its homeCommunityId."""

from __future__ import annotations

from typing import Any

from peers.gateway import gateway_config
from peers.net import free_port

__all__ = ["COMMUNITY_A", "COMMUNITY_B", "RLUID", "chain_configs"]

COMMUNITY_A = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
COMMUNITY_B = "urn:oid:1.3.6.1.4.1.21367.13.70.2"
RLUID = "1.3.6.1.4.1.21367.13.70.1.200"  # the Retrieve Location UID of A's source


def chain_configs(source_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Configurations of A's responding and B's initiating gateway, on free loopback ports."""
    responding_port = free_port()
    responding = gateway_config(
        home_community_id=COMMUNITY_A,
        port=responding_port,
        base_path="/wado-rs",
        upstreams={"ids-a": {"protocol": "wado-rs", "base_urls": [source_url]}},
        sources={RLUID: "ids-a"},
    )
    initiating = gateway_config(
        home_community_id=COMMUNITY_B,
        port=free_port(),
        upstreams={
            "community-a": {
                "protocol": "xc-wado",
                "base_urls": [f"http://127.0.0.1:{responding_port}/wado-rs/"],
            }
        },
        communities={COMMUNITY_A: "community-a"},
    )
    return responding, initiating
