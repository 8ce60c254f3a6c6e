"""Retrieval plans from a manifest (MADO X.4.2 use cases 1-2, Rev 0.6 Appendix A)."""

from __future__ import annotations

from dataclasses import replace

import pydicom
import pytest

from mado.errors import SelectionError
from mado.kos_reader import read_kos
from mado.model import Instance, KeyImageFlag, Manifest, Series
from mado.plan import plan_from_key_image_notes, plan_key_images, plan_series, plan_study
from mado.vocab import KOS_SOP_CLASS_UID, OF_INTEREST
from routing.ids import Oid, Uid
from tests.samples import kos_sample

KO_SERIES = Uid("1.2.3.99")
KIN = Uid("1.2.3.99.1")


def sample() -> Manifest:
    return read_kos(pydicom.dcmread(kos_sample()))[0]


def with_ko_series(manifest: Manifest, flagged: set[str]) -> Manifest:
    flag = KeyImageFlag(
        series_uid=KO_SERIES,
        sop_instance_uid=KIN,
        sop_class_uid=Uid(KOS_SOP_CLASS_UID),
        purpose=OF_INTEREST,
    )
    series = tuple(
        replace(
            s,
            instances=tuple(
                replace(i, flagged_by=(flag,)) if i.sop_instance_uid in flagged else i
                for i in s.instances
            ),
        )
        for s in manifest.series
    )
    ko = Series(
        uid=KO_SERIES,
        modality="KO",
        retrieve_location_uid=Oid("1.3.6.1.4.1.19376.1.1.200.1"),
        instances=(Instance(sop_class_uid=Uid(KOS_SOP_CLASS_UID), sop_instance_uid=KIN),),
    )
    return replace(manifest, series=(*series, ko))


def test_whole_study_at_two_locations_is_one_request_per_series() -> None:
    plan = plan_study(sample())
    assert [r.level for r in plan.requests] == ["series", "series"]
    assert [r.retrieve_location_uid for r in plan.requests] == [
        "1.3.6.1.4.1.19376.1.1.200.1",
        "1.3.6.1.4.1.19376.1.1.200.2",
    ]
    assert plan.requests[0].retrieve_url == "https://dicomserver.com/AET/rs/"


def test_whole_study_at_one_location_is_one_study_request() -> None:
    manifest = sample()
    same = replace(
        manifest,
        series=tuple(replace(s, retrieve_location_uid=Oid("1.2.3")) for s in manifest.series),
    )
    plan = plan_study(same)
    assert [r.level for r in plan.requests] == ["study"]
    assert plan.requests[0].study_uid == manifest.study.uid


def test_series_by_uid_and_modality() -> None:
    manifest = sample()
    uid = manifest.series[1].uid
    assert [
        r.series_uid for r in plan_series(manifest, series_uids=[f"urn:oid:{uid}"]).requests
    ] == [uid]
    assert len(plan_series(manifest, modalities=["ct"]).requests) == 2


def test_unknown_series_and_absent_modality_are_errors() -> None:
    with pytest.raises(SelectionError, match=r"not in the manifest: 9\.9"):
        plan_series(sample(), series_uids=["9.9"])
    with pytest.raises(SelectionError, match="the manifest has CT"):
        plan_series(sample(), modalities=["MR"])


def test_key_images_absent_reports_the_fallback() -> None:
    plan = plan_key_images(with_ko_series(sample(), set()))
    assert plan.requests == ()
    assert not plan.key_images_available
    assert [r.series_uid for r in plan.key_object_series] == [KO_SERIES]


def test_key_images_are_instance_level_unless_the_whole_series_is_flagged() -> None:
    manifest = sample()
    first, second = manifest.series
    flagged = {str(first.instances[3].sop_instance_uid)} | {
        str(i.sop_instance_uid) for i in second.instances
    }
    plan = plan_key_images(with_ko_series(manifest, flagged))
    assert plan.key_images_available
    assert [(r.series_uid, r.level) for r in plan.requests] == [
        (first.uid, "instance"),
        (second.uid, "series"),
    ]
    assert plan.requests[0].instance_uids == (first.instances[3].sop_instance_uid,)


def test_fallback_plans_from_the_notes_read() -> None:
    manifest = with_ko_series(sample(), set())
    target = manifest.series[0].instances[5]
    note = pydicom.Dataset()
    note.SOPClassUID = KOS_SOP_CLASS_UID
    note.StudyInstanceUID = manifest.study.uid
    note.SeriesInstanceUID = KO_SERIES
    note.SOPInstanceUID = KIN
    title = pydicom.Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = (
        "113000",
        "DCM",
        "Of Interest",
    )
    note.ConceptNameCodeSequence = [title]
    ref = pydicom.Dataset()
    ref.ReferencedSOPClassUID = target.sop_class_uid
    ref.ReferencedSOPInstanceUID = target.sop_instance_uid
    series = pydicom.Dataset()
    series.SeriesInstanceUID = manifest.series[0].uid
    series.ReferencedSOPSequence = [ref]
    evidence = pydicom.Dataset()
    evidence.StudyInstanceUID = manifest.study.uid
    evidence.ReferencedSeriesSequence = [series]
    note.CurrentRequestedProcedureEvidenceSequence = [evidence]
    plan = plan_from_key_image_notes(manifest, [note])
    assert [(r.level, r.instance_uids) for r in plan.requests] == [
        ("instance", (target.sop_instance_uid,))
    ]
    assert plan.instance_count == 1
