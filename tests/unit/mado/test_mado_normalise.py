"""Normalisation of identifiers, URLs and dates (MADO checklist items 3-4)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mado.errors import InvalidManifest
from mado.normalise import (
    fhir_datetime,
    split_fhir_datetime,
    to_dicom_time,
    to_oid,
    to_uid,
    to_url,
)

component = st.one_of(st.just("0"), st.integers(min_value=1, max_value=10**9).map(str))
oids = st.lists(component, min_size=2, max_size=8).map(".".join).filter(lambda s: len(s) <= 64)
prefixes = st.sampled_from(["", "urn:oid:", "oid:", "URN:OID:", "Oid:", " urn:oid:"])


@pytest.mark.checklist(4)
@given(oid=oids, prefix=prefixes)
def test_any_oid_prefix_is_dropped(oid: str, prefix: str) -> None:
    assert to_oid(prefix + oid) == oid


@pytest.mark.checklist(4)
@given(text=st.text(alphabet="ACMEacme-_ /", min_size=1, max_size=20))
def test_non_oids_are_none(text: str) -> None:
    assert to_oid(text) is None


def test_leading_zero_component_is_not_an_oid() -> None:
    assert to_oid("1.02.3") is None


@pytest.mark.parametrize(
    "raw",
    ["http://notspecified", "http://NotSpecified/", "http://notapplicable", "", "   ", None],
)
def test_placeholder_addresses_mean_no_url(raw: str | None) -> None:
    assert to_url(raw) is None


def test_real_url_is_kept() -> None:
    assert to_url(" https://dicomserver.com/AET/rs/ ") == "https://dicomserver.com/AET/rs/"


def test_invalid_uid_names_the_path() -> None:
    with pytest.raises(InvalidManifest, match=r"series\[0\]\.uid: invalid UID '1\.2\.abc'"):
        to_uid("1.2.abc", "series[0].uid")


def test_missing_uid_names_the_path() -> None:
    with pytest.raises(InvalidManifest, match="x: UID is missing"):
        to_uid("  ", "x")


dates = st.dates().filter(lambda d: d.year >= 1000).map(lambda d: d.strftime("%Y%m%d"))
times = st.builds(
    lambda h, m, s, f: f"{h:02d}{m:02d}{s:02d}{f}",
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 59),
    st.sampled_from(["", ".1", ".337000", ".123456"]),
)
offsets = st.builds(
    lambda sign, h, m: f"{sign}{h:02d}{m:02d}",
    st.sampled_from("+-"),
    st.integers(0, 14),
    st.sampled_from([0, 30, 45]),
)


@given(date=dates, time=times, offset=offsets)
def test_dicom_fhir_datetime_round_trip(date: str, time: str, offset: str) -> None:
    text = fhir_datetime(date, time, offset)
    assert text is not None
    assert split_fhir_datetime(text) == (date, time, offset)


def test_datetime_without_offset_keeps_only_the_date() -> None:
    assert fhir_datetime("20260224", "162310", None) == "2026-02-24"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1623", "162300"),
        ("16", "160000"),
        ("16:23:10.5", "162310.5"),
        ("162310.000", "162310.000"),
    ],
)
def test_times_are_padded_to_seconds(raw: str, expected: str) -> None:
    assert to_dicom_time(raw) == expected
