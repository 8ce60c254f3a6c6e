"""``manifest create`` writes what ``manifest validate`` accepts, whatever Body Part Examined
says — a CID IHE-MADO1 value, another DICOM body part (``HEAD``), free text, nothing at all
(issue 16, class 6)."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mado.create import SeriesLocation, create_kos
from mado.validate import validate_bytes
from routing.ids import Oid
from tests.functional.mado.conftest import build_study_metadata

LOCATION = SeriesLocation(
    retrieve_location_uid=Oid("1.3.6.1.4.1.19376.1.1.200.9"),
    retrieve_url="https://pacs.example.org/dicom-web/",
)
BODY_PART = "00180015"
DICOM_BODY_PARTS = ["HEAD", "CHEST", "ABDOMEN", "KNEE", "BRAIN", "CSPINE", "UPPERTRUNK", "PELVIS"]


def metadata_with(body_parts: list[str | None]) -> list[dict[str, Any]]:
    """The fixture study, each instance's Body Part Examined set from ``body_parts`` in turn
    (``None``: absent)."""
    metadata, _ = build_study_metadata()
    for index, instance in enumerate(metadata):
        instance.pop(BODY_PART, None)
        value = body_parts[index % len(body_parts)]
        if value is not None:
            instance[BODY_PART] = {"vr": "CS", "Value": [value]}
    return metadata


def created_report_errors(metadata: list[dict[str, Any]]) -> list[str]:
    buffer = io.BytesIO()
    create_kos(metadata, LOCATION, institution="Example Hospital").save_as(
        buffer, enforce_file_format=True
    )
    report = validate_bytes(buffer.getvalue(), "created.dcm")
    return [str(finding) for finding in report.errors]


def test_a_body_part_outside_the_mado_value_set_still_validates() -> None:
    assert created_report_errors(metadata_with(["HEAD"])) == []


def test_no_body_part_at_all_still_validates() -> None:
    assert created_report_errors(metadata_with([None])) == []


CODE_STRING = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ ", min_size=1, max_size=16)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.sampled_from(DICOM_BODY_PARTS), CODE_STRING), min_size=1, max_size=4
    )
)
def test_whatever_the_body_parts_the_created_manifest_validates(
    body_parts: list[str | None],
) -> None:
    assert created_report_errors(metadata_with(body_parts)) == []
