"""``location_aliases``: opaque location identifiers in manifests -> Retrieve Location UIDs
(issue 16, class 2). Every problem names its field path."""

from __future__ import annotations

from typing import Any

import pytest

from routing.errors import ConfigError
from routing.ids import Oid
from routing.loader import parse_config

BASE: dict[str, Any] = {
    "self": {"home_community_id": "1.2.3.4", "audit_source_id": "iig"},
    "upstreams": {"rig": {"protocol": "xc-wado", "base_urls": ["https://rig.example.org/"]}},
    "communities": {"5.6.7.8": "rig"},
}


def problems(aliases: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "location_aliases": aliases})
    return [str(p) for p in caught.value.problems]


def test_aliases_are_read_as_oids() -> None:
    config = parse_config({**BASE, "location_aliases": {"ACME": "urn:oid:1.2.3.4.200"}})
    assert dict(config.location_aliases) == {"ACME": Oid("1.2.3.4.200")}
    assert config.location_aliases["ACME"] == "1.2.3.4.200"


def test_no_section_means_no_aliases() -> None:
    assert dict(parse_config(BASE).location_aliases) == {}


def test_aliases_are_read_only() -> None:
    config = parse_config({**BASE, "location_aliases": {"ACME": "1.2.3"}})
    with pytest.raises(TypeError):
        config.location_aliases["X"] = Oid("1.2")  # type: ignore[index]


@pytest.mark.parametrize(
    ("aliases", "expected"),
    [
        ({"ACME": "not-an-oid"}, "location_aliases.ACME: must be the Retrieve Location UID"),
        ({"ACME": 12}, "location_aliases.ACME: must be the Retrieve Location UID"),
        ({"ACME": "1.02"}, "location_aliases.ACME: must be the Retrieve Location UID"),
        ({"1.2.3.4": "1.2.3.5"}, "location_aliases.1.2.3.4: identifier is an OID"),
        ({"urn:oid:1.2.3": "1.2.3.5"}, "identifier is an OID"),
        ({"x" * 65: "1.2.3"}, "identifier must be 1 to 64 characters"),
        ({" ": "1.2.3"}, "identifier must be 1 to 64 characters"),
        ({"AC\x01ME": "1.2.3"}, "identifier has control characters"),
        ({"ACME": "1.2.3", " ACME ": "1.2.4"}, "duplicates 'ACME'"),
        (["ACME"], "location_aliases: must be a mapping"),
    ],
)
def test_each_problem_names_its_field(aliases: object, expected: str) -> None:
    found = problems(aliases)
    assert any(expected in p for p in found), found
