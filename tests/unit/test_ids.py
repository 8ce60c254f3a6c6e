"""Identifier value types (routing.ids): PS3.5 §9.1 syntax, prefix handling, equality."""

from __future__ import annotations

import pytest

from routing.errors import InvalidIdentifier
from routing.ids import HomeCommunityId, Oid, Uid


@pytest.mark.parametrize(
    "text", ["1.2.3", "0", "1.0.2", "2.25.329800735698586629295641978511506172918"]
)
def test_valid_uids_are_kept_as_written(text: str) -> None:
    assert Uid(text) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "digits separated by dots"),
        ("1.02.3", "leading zeros"),
        ("1..2", "digits separated by dots"),
        ("1.2.", "digits separated by dots"),
        (".1.2", "digits separated by dots"),
        ("1.2.3a", "digits separated by dots"),
        ("1.2.3 ", "digits separated by dots"),
        ("1." + "2" * 63, "longer than 64"),
        ("urn:oid:1.2.3", "digits separated by dots"),  # a UID never carries the OID prefix
    ],
)
def test_invalid_uids_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifier, match=reason) as caught:
        Uid(text)
    assert caught.value.kind == "UID"


def test_exactly_64_characters_is_allowed() -> None:
    text = "1." + "2" * 62
    assert len(text) == 64
    assert Uid(text) == text


@pytest.mark.parametrize(
    "spelling", ["1.2.3.4", "urn:oid:1.2.3.4", "URN:OID:1.2.3.4", "oid:1.2.3.4"]
)
def test_oid_prefixes_are_dropped_so_spellings_compare_equal(spelling: str) -> None:
    oid = Oid(spelling)
    assert oid == "1.2.3.4"
    assert hash(oid) == hash(Oid("1.2.3.4"))
    assert oid.urn == "urn:oid:1.2.3.4"


def test_home_community_id_is_an_oid_with_its_own_kind() -> None:
    assert HomeCommunityId("urn:oid:5.6.7.8") == Oid("5.6.7.8")
    with pytest.raises(InvalidIdentifier) as caught:
        HomeCommunityId("ACME")
    assert caught.value.kind == "homeCommunityId"
    assert "ACME" in str(caught.value)


def test_non_strings_are_refused() -> None:
    with pytest.raises(InvalidIdentifier):
        Oid(1.2)  # type: ignore[arg-type]


def test_is_valid_does_not_raise() -> None:
    assert Uid.is_valid("1.2")
    assert not Uid.is_valid("1.02")
