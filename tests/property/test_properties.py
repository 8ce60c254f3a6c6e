"""Hypothesis properties of the parsers and the streaming rewriter."""

from __future__ import annotations

import contextlib
import re

from hypothesis import given
from hypothesis import strategies as st

from routing.errors import InvalidIdentifier, InvalidRequestPath
from routing.ids import HomeCommunityId, Oid, Uid
from routing.rad160 import parse_rad160

UID_RE = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")

component = st.one_of(st.just("0"), st.integers(min_value=1, max_value=10**12).map(str))
valid_uid = (
    st.lists(component, min_size=1, max_size=12).map(".".join).filter(lambda s: len(s) <= 64)
)
prefix = st.sampled_from(["", "urn:oid:", "URN:OID:", "oid:", "Oid:"])


@given(valid_uid)
def test_valid_uids_round_trip(text: str) -> None:
    assert Uid(text) == text
    assert str(Oid(text)) == text


@given(st.text(max_size=80))
def test_uid_accepts_exactly_the_ps35_syntax(text: str) -> None:
    expected = len(text) <= 64 and UID_RE.fullmatch(text) is not None
    try:
        Uid(text)
        accepted = True
    except InvalidIdentifier:
        accepted = False
    assert accepted is expected


@given(prefix, valid_uid)
def test_oid_spellings_are_equal_after_normalisation(spelling: str, text: str) -> None:
    assert Oid(spelling + text) == Oid(text) == HomeCommunityId(text)
    assert Oid(spelling + text).urn == f"urn:oid:{text}"


@given(
    hcid=valid_uid,
    rluid=valid_uid,
    study=valid_uid,
    series=st.none() | valid_uid,
    instance=st.none() | valid_uid,
    study_word=st.sampled_from(["study", "studies"]),
    hcid_prefix=prefix,
    rest=st.sampled_from([(), ("metadata",), ("rendered",), ("frames", "1,2")]),
    slash=st.booleans(),
)
def test_grammar_round_trip(
    hcid: str,
    rluid: str,
    study: str,
    series: str | None,
    instance: str | None,
    study_word: str,
    hcid_prefix: str,
    rest: tuple[str, ...],
    slash: bool,
) -> None:
    parts = ["homeCommunityId", hcid_prefix + hcid, "RetrieveLocationUID", rluid, study_word, study]
    if series is not None:
        parts += ["series", series]
        if instance is not None:
            parts += ["instances", instance]
    parts += rest
    path = "/".join(parts) + ("/" if slash else "")
    request = parse_rad160(path)
    assert request.home_community_id == hcid
    assert request.retrieve_location_uid == rluid
    assert request.study == study
    assert request.series == series
    assert request.instance == (instance if series is not None else None)
    assert request.relay_path == path
    expected = ["studies", study]
    if series is not None:
        expected += ["series", series] + (["instances", instance] if instance is not None else [])
    assert request.resource_path == "/".join([*expected, *rest])
    # parsing the canonical form gives the same request
    again = parse_rad160(request.prefix + request.resource_path)
    assert again.resource_path == request.resource_path


@given(st.text(max_size=200), st.text(max_size=100))
def test_parser_never_fails_other_than_with_its_own_errors(path: str, query: str) -> None:
    with contextlib.suppress(InvalidIdentifier, InvalidRequestPath):
        parse_rad160(path, query)
