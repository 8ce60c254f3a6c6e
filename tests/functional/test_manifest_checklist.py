"""Conformance checklist items 3 and 7 (../shared/spec-digest.md), end to end: ``fetch``
through two gateway processes and directly, and ``POST /mado/retrieve``, against Orthanc."""

from __future__ import annotations

import copy
import dataclasses
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.consumer.urls import Target, urls_for
from mado.create import SeriesLocation, build_manifest, datasets_from_metadata
from mado.fhir_reader import read_fhir
from mado.fhir_writer import write_fhir
from mado.load import write_path
from mado.model import Instance, Manifest
from mado.plan import plan_study
from mado.vocab import EXT_DATA_ABSENT_REASON
from peers.multipart import split_multipart
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study
from routing.ids import HomeCommunityId, Oid, Uid
from tests.functional.chain import COMMUNITY_A, RLUID, Chain
from tests.functional.manifests import fetch, post_manifest, received, through


@dataclasses.dataclass(frozen=True)
class Stored:
    study: SyntheticStudy
    manifest: Manifest  # lists exactly what Orthanc holds, with RLUID and Orthanc's URL


@pytest.fixture(scope="module")
def stored(orthanc: OrthancServer) -> Stored:
    study = make_study(seed="checklist", series_count=2, instances_per_series=3, rows=16, columns=16)
    orthanc.upload_all([i.part10 for i in study.instances])
    with urllib.request.urlopen(f"{orthanc.dicomweb_url}studies/{study.study_uid}/metadata") as a:
        metadata = orjson.loads(a.read())
    location = SeriesLocation(retrieve_location_uid=Oid(RLUID), retrieve_url=orthanc.dicomweb_url)
    return Stored(study=study, manifest=build_manifest(datasets_from_metadata(metadata), location))






def post(chain: Chain, body: bytes) -> tuple[int, str, bytes]:
    return post_manifest(chain.initiating.url, body)


def everything(stored: Stored) -> dict[str, bytes]:
    return {i.sop_instance_uid: i.part10 for i in stored.study.instances}


# -- checklist item 3 ----------------------------------------------------------------------------

ABSENT_ADDRESSES: dict[str, dict[str, Any]] = {
    "data-absent-reason": {
        "address": "https://pacs.elsewhere.example/dicom-web/",
        "_address": {"extension": [{"url": EXT_DATA_ABSENT_REASON, "valueCode": "masked"}]},
    },
    "notspecified": {"address": "http://notspecified"},
    "notapplicable": {"address": "http://notapplicable/"},
}


def without_address(stored: Stored, variant: str) -> dict[str, Any]:
    bundle = copy.deepcopy(write_fhir(stored.manifest))
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Endpoint" and "MadoWadoEndpoint" in str(resource.get("meta")):
            resource.pop("_address", None)
            resource.update(copy.deepcopy(ABSENT_ADDRESSES[variant]))
    return bundle


@pytest.mark.checklist(3)
@pytest.mark.parametrize("variant", sorted(ABSENT_ADDRESSES))
def test_an_absent_endpoint_address_means_no_retrieve_url_and_rluid_lookup(
    stored: Stored, chain: Chain, tmp_path: Path, variant: str
) -> None:
    """Checklist item 3: an Endpoint.address carrying a data-absent-reason extension, or
    http://notspecified / http://notapplicable, is "no Retrieve URL": the series is retrieved by
    Retrieve Location UID lookup — even when the consumer is asked to send Retrieve URLs (the
    responding gateway's default URL policy would refuse any it got)."""
    bundle = without_address(stored, variant)
    manifest, _ = read_fhir(bundle)
    assert {s.retrieve_url for s in manifest.series} == {None}
    assert {s.retrieve_location_uid for s in manifest.series} == {RLUID}
    target = Target(
        gateway="http://iig.example/wado/",
        home_community_id=HomeCommunityId(COMMUNITY_A),
        send_retrieve_url=True,
    )
    urls = [u for r in plan_study(manifest).requests for u in urls_for(r, target)]
    assert urls and all(f"/RetrieveLocationUID/{RLUID}/" in u and "?" not in u for u in urls)

    path = tmp_path / "manifest.json"
    path.write_bytes(orjson.dumps(bundle))
    result = through(chain, path, tmp_path / "out", "--send-retrieve-url")
    assert result.returncode == 0, result.stderr
    assert received(tmp_path / "out") == everything(stored)

    status, content_type, body = post(chain, path.read_bytes())
    assert status == 200, body[:300]
    assert sorted(p.body for p in split_multipart(body, content_type)) == sorted(
        everything(stored).values()
    )

    direct = fetch(str(path), "--out", str(tmp_path / "direct"))
    assert direct.returncode == 1
    assert "no Retrieve URL: retrieve it through a gateway" in direct.stderr
    assert "notspecified" not in direct.stderr and "notapplicable" not in direct.stderr
    assert received(tmp_path / "direct") == {}


# -- checklist item 7 ----------------------------------------------------------------------------


def listing_fewer_and_more(stored: Stored) -> Manifest:
    """Series 1 without its last instance (the source has one more than listed); series 2 with
    an instance the source does not have (the source has one fewer than listed)."""
    first, second = stored.manifest.series
    phantom = Instance(
        sop_class_uid=second.instances[0].sop_class_uid,
        sop_instance_uid=Uid("2.25.999999999999999999999999"),
        number=99,
    )
    return dataclasses.replace(
        stored.manifest,
        series=(
            dataclasses.replace(first, instances=first.instances[:-1]),
            dataclasses.replace(second, instances=(*second.instances, phantom)),
        ),
    )


@pytest.mark.checklist(7)
@pytest.mark.parametrize("mode", ["through-gateways", "retrieve-url"])
def test_more_or_fewer_instances_than_listed_is_no_failure(
    stored: Stored, chain: Chain, tmp_path: Path, mode: str
) -> None:
    """Checklist item 7: a study retrieve that returns an instance the manifest does not list
    and lacks one it lists completes; the difference is reported, not failed (MADO X.1.1.2)."""
    path = tmp_path / "manifest.dcm"
    write_path(listing_fewer_and_more(stored), path, "kos")
    out = tmp_path / "out"
    result = through(chain, path, out) if mode == "through-gateways" else fetch(str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert received(out) == everything(stored)
    assert "1 instance(s) the manifest lists did not arrive: 2.25.999999999999999999999999" in result.stdout
    assert "1 instance(s) arrived that the manifest does not list" in result.stdout


@pytest.mark.checklist(7)
@pytest.mark.parametrize("selection", ["study", "series"])
def test_post_manifest_with_more_or_fewer_instances_than_listed_answers_what_exists(
    stored: Stored, chain: Chain, tmp_path: Path, selection: str
) -> None:
    """Checklist item 7, POST /mado/retrieve: study and series retrieves answer 200 with what
    the source holds, more or fewer than the manifest lists."""
    path = tmp_path / "manifest.dcm"
    write_path(listing_fewer_and_more(stored), path, "kos")
    query = f"homeCommunityId={COMMUNITY_A}&selection={selection}"
    if selection == "series":
        query += "&modality=CT"
    request = urllib.request.Request(
        f"{chain.initiating.url}/mado/retrieve?{query}", data=path.read_bytes(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        assert answer.status == 200
        parts = split_multipart(answer.read(), answer.headers["Content-Type"])
    assert sorted(p.body for p in parts) == sorted(everything(stored).values())
