"""What the manifest tests do as a user would: run ``mado-gateway fetch``, POST a manifest,
read what was stored — one helper each, shared by every manifest test module."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from mado.model import Manifest
from tests.functional.chain import COMMUNITY_A, Chain

__all__ = ["fetch", "post_manifest", "received", "strip_key_image_flags", "through"]

REPO = Path(__file__).resolve().parents[2]


def fetch(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m gateway fetch ARGS`` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "fetch", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def through(chain: Chain, manifest: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``fetch`` of ``manifest`` into ``out`` through the chain's initiating gateway."""
    return fetch(
        str(manifest),
        "--gateway",
        chain.initiating.endpoint,
        "--home-community-id",
        COMMUNITY_A,
        "--out",
        str(out),
        *extra,
    )


def post_manifest(
    gateway_url: str,
    body: bytes,
    *,
    query: str = f"homeCommunityId={COMMUNITY_A}",
    headers: dict[str, str] | None = None,
    timeout_s: float = 60,
) -> tuple[int, str, bytes]:
    """``POST {gateway_url}/mado/retrieve?{query}``: status, Content-Type and body."""
    request = urllib.request.Request(
        f"{gateway_url}/mado/retrieve?{query}", data=body, method="POST", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as answer:
            return answer.status, answer.headers["Content-Type"], answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def received(out: Path) -> dict[str, bytes]:
    """The Part 10 files ``fetch`` stored in ``out``, by SOP Instance UID."""
    return {p.stem: p.read_bytes() for p in out.rglob("*.dcm")}


def strip_key_image_flags(manifest: Manifest) -> Manifest:
    """``manifest`` as a Content Creator writes it that did not read the Key Image Notes:
    no key-image flags, so a key-image retrieval must read the notes themselves."""
    series = tuple(
        dataclasses.replace(
            s,
            instances=tuple(
                dataclasses.replace(i, flagged_by=(), key_description=None) for i in s.instances
            ),
        )
        for s in manifest.series
    )
    return dataclasses.replace(manifest, series=series)
