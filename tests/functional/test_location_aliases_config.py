"""``check-config`` reads ``location_aliases`` like every section: counted when valid, each
problem named by its field path (issue 16, class 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from peers.gateway import REPO

EXAMPLE = REPO / "examples" / "initiating-gateway.yaml"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_the_example_maps_the_specifications_sample_identifier() -> None:
    result = check(EXAMPLE)
    assert result.returncode == 0, result.stderr
    assert "1 location alias(es)" in result.stdout
    assert yaml.safe_load(EXAMPLE.read_text())["location_aliases"]["ACME"]


def test_a_bad_alias_is_named_by_its_field_path(tmp_path: Path) -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    document["location_aliases"] = {"ACME": "not an oid", "1.2.3": "1.2.4"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    result = check(bad)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "location_aliases.ACME" in result.stderr
    assert "location_aliases.1.2.3" in result.stderr
