"""What a study or series becomes when the gateway cannot list it (a 409
``instance-list-required``: its community speaks XCA-I): one instance-level URL per instance
the manifest lists (gateway.consumer.urls.instance_urls); xcai-digest.md §9 item 32."""

from __future__ import annotations

import pytest

from gateway.consumer.urls import Target, instance_urls, urls_for
from mado.model import Instance, Manifest, Patient, Series, Study
from mado.plan import plan_series, plan_study
from routing.ids import HomeCommunityId, Oid, Uid
from routing.rad160 import parse_rad160

GATEWAY = Target(gateway="https://iig.example.org/wado/", home_community_id=HomeCommunityId("1.2.3"))
LOCATION = Oid("1.2.3.200")
CT = Uid("1.2.840.10008.5.1.4.1.1.2")


def series(uid: str, count: int) -> Series:
    return Series(
        uid=Uid(uid),
        modality="CT",
        retrieve_location_uid=LOCATION,
        instances=tuple(
            Instance(sop_class_uid=CT, sop_instance_uid=Uid(f"{uid}.{n}"))
            for n in range(1, count + 1)
        ),
    )


MANIFEST = Manifest(
    patient=Patient(),
    study=Study(uid=Uid("1.2.9")),
    series=(series("1.2.9.1", 2), series("1.2.9.2", 0), series("1.2.9.3", 1)),
)


def resources(urls: list[str]) -> list[tuple[str | None, str | None]]:
    parsed = [parse_rad160(url.removeprefix(str(GATEWAY.gateway))) for url in urls]
    assert {(p.home_community_id, p.retrieve_location_uid, p.study) for p in parsed} == {
        ("1.2.3", LOCATION, "1.2.9")
    }
    return [(p.series, p.instance) for p in parsed]


@pytest.mark.xcai(32)
def test_a_study_becomes_every_listed_instance_in_manifest_order() -> None:
    (study,) = plan_study(MANIFEST).requests
    assert study.level == "study"
    assert resources(instance_urls(study, MANIFEST, GATEWAY)) == [
        ("1.2.9.1", "1.2.9.1.1"),
        ("1.2.9.1", "1.2.9.1.2"),
        ("1.2.9.3", "1.2.9.3.1"),
    ]


@pytest.mark.xcai(32)
def test_a_series_becomes_its_own_instances() -> None:
    (chosen,) = plan_series(MANIFEST, series_uids=["1.2.9.3"]).requests
    assert resources(urls_for(chosen, GATEWAY)) == [("1.2.9.3", None)]
    assert resources(instance_urls(chosen, MANIFEST, GATEWAY)) == [("1.2.9.3", "1.2.9.3.1")]
