"""A real cross-community retrieval: client → initiating gateway (community B) → responding
gateway (community A) → Orthanc, two gateway processes, compared with Orthanc directly."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pydicom
import pytest

from peers.multipart import boundary_of, split_multipart
from peers.studies import SyntheticStudy
from tests.functional.chain import COMMUNITY_A, RLUID, Chain

DICOM = 'multipart/related; type="application/dicom"'


def get(url: str, accept: str | None = DICOM) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def normalised(content_type: str, body: bytes) -> bytes:
    """The body with its (per-response random) boundary replaced by a fixed token."""
    return body.replace(boundary_of(content_type).encode(), b"BOUNDARY")


def assert_identical(chain: Chain, tail: str, expected_count: int) -> list[bytes]:
    status, content_type, body = get(chain.via_gateways(tail))
    direct_status, direct_type, direct_body = get(chain.direct(tail))
    assert (status, direct_status) == (200, 200)
    assert content_type.split("boundary=")[0] == direct_type.split("boundary=")[0]
    assert normalised(content_type, body) == normalised(direct_type, direct_body)
    parts = split_multipart(body, content_type)
    assert len(parts) == expected_count
    return [part.body for part in parts]


@pytest.mark.checklist(19, 26)
def test_study_retrieval_through_two_gateways_is_byte_identical(
    chain: Chain, study: SyntheticStudy
) -> None:
    parts = assert_identical(chain, f"studies/{study.study_uid}", len(study.instances))
    stored = {i.sop_instance_uid: i.part10 for i in study.instances}
    received = {
        pydicom.dcmread(io.BytesIO(p), stop_before_pixels=True).SOPInstanceUID: p for p in parts
    }
    assert received == stored  # the very bytes that were stored, for every SOP instance
    # both gateways noted every instance from the part headers as it streamed by
    for gateway in (chain.responding, chain.initiating):
        lines = [
            json.loads(line) for line in gateway.log().splitlines() if '"msg":"exchange"' in line
        ]
        mine = [line for line in lines if line["path"].endswith(f"/studies/{study.study_uid}")]
        assert mine[-1]["instances"] == len(study.instances)


@pytest.mark.checklist(9, 16)
def test_mado_spelling_study_and_urn_oid_community(chain: Chain, study: SyntheticStudy) -> None:
    status, content_type, body = get(
        chain.via_gateways(f"study/{study.study_uid}/", hcid=COMMUNITY_A)
    )
    assert status == 200
    assert len(split_multipart(body, content_type)) == len(study.instances)


@pytest.mark.checklist(26)
def test_series_retrieval_is_byte_identical(chain: Chain, study: SyntheticStudy) -> None:
    series = study.series_uids[1]
    parts = assert_identical(
        chain, f"studies/{study.study_uid}/series/{series}", len(study.of_series(series))
    )
    assert set(parts) == {i.part10 for i in study.of_series(series)}


@pytest.mark.checklist(26)
def test_instance_retrieval_is_byte_identical(chain: Chain, study: SyntheticStudy) -> None:
    instance = study.instances[7]
    tail = f"studies/{study.study_uid}/series/{instance.series_uid}/instances/{instance.sop_instance_uid}"
    assert assert_identical(chain, tail, 1) == [instance.part10]


def test_metadata_bulkdata_uris_work_through_the_gateways(
    chain: Chain, study: SyntheticStudy
) -> None:
    series = study.series_uids[0]
    status, content_type, body = get(
        chain.via_gateways(f"studies/{study.study_uid}/series/{series}/metadata"),
        accept="application/dicom+json",
    )
    assert status == 200
    assert content_type.startswith("application/dicom+json")
    assert chain.orthanc.url.encode() not in body
    assert chain.responding.url.encode() not in body
    metadata = json.loads(body)
    assert len(metadata) == len(study.of_series(series))
    uri = metadata[0]["7FE00010"]["BulkDataURI"]
    assert uri.startswith(chain.initiating.endpoint + "homeCommunityId/")
    via_status, via_type, via_body = get(uri, accept=None)
    direct_uri = chain.orthanc.dicomweb_url + uri.split(f"/RetrieveLocationUID/{RLUID}/", 1)[1]
    direct_status, direct_type, direct_body = get(direct_uri, accept=None)
    assert (via_status, direct_status) == (200, 200)
    assert normalised(via_type, via_body) == normalised(direct_type, direct_body)
    sop = metadata[0]["00080018"]["Value"][0]
    pixel_data = pydicom.dcmread(
        io.BytesIO({i.sop_instance_uid: i.part10 for i in study.instances}[sop])
    ).PixelData
    assert split_multipart(via_body, via_type)[0].body == pixel_data


@pytest.mark.checklist(12)
def test_unknown_community_is_404_naming_it(chain: Chain, study: SyntheticStudy) -> None:
    status, content_type, body = get(chain.via_gateways(f"studies/{study.study_uid}", hcid="9.8.7"))
    assert status == 404
    assert content_type == "application/problem+json"
    problem = json.loads(body)
    assert problem["type"] == "urn:mado-gateway:problem:unknown-community"
    assert "9.8.7" in problem["detail"]


@pytest.mark.checklist(14)
def test_unknown_retrieve_location_is_404_at_the_responding_gateway(
    chain: Chain, study: SyntheticStudy
) -> None:
    url = f"{chain.responding.endpoint}homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/1.2.3.999/studies/{study.study_uid}"
    status, _, body = get(url)
    assert status == 404
    problem = json.loads(body)
    assert problem["type"] == "urn:mado-gateway:problem:unknown-retrieve-location"
    assert "1.2.3.999" in problem["detail"]
    # through the initiating gateway the status is relayed
    relayed = chain.via_gateways(f"studies/{study.study_uid}").replace(RLUID, "1.2.3.999")
    assert get(relayed)[0] == 404


def test_unknown_study_at_the_source_is_relayed_as_404(chain: Chain) -> None:
    status, content_type, body = get(chain.via_gateways("studies/1.2.3.4.5.6.7"))
    assert status == 404
    assert content_type == "application/problem+json"
    assert b"Orthanc" not in body and b"inexistent" not in body  # the source's body stays behind


def test_invalid_uid_is_400_and_nothing_reaches_the_responding_gateway(
    chain: Chain, tmp_path: Path
) -> None:
    before = chain.responding.log().count('"msg":"exchange"')
    status, _, body = get(chain.via_gateways("studies/1.2.03.4"))
    assert status == 400
    assert json.loads(body)["type"] == "urn:mado-gateway:problem:invalid-identifier"
    assert chain.responding.log().count('"msg":"exchange"') == before
