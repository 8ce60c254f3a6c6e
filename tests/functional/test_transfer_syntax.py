"""Transfer syntaxes through real gateways in front of Orthanc (checklist items 20, 22, 23)."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pydicom
import pytest

from peers.multipart import split_multipart
from peers.studies import SyntheticStudy
from tests.functional.chain import COMMUNITY_A, RLUID, Chain

DICOM = 'multipart/related; type="application/dicom"'
IMPLICIT = "1.2.840.10008.1.2"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
EXPLICIT = "1.2.840.10008.1.2.1"


def get(url: str, accept: str | None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def exchanges(log: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.splitlines() if '"msg":"exchange"' in line]


def syntaxes(content_type: str, body: bytes) -> set[str]:
    """The File Meta transfer syntax of every part (PS3.18 §8.7.9: it wins)."""
    return {
        str(
            pydicom.dcmread(
                io.BytesIO(part.body), stop_before_pixels=True
            ).file_meta.TransferSyntaxUID
        )
        for part in split_multipart(body, content_type)
    }


def test_orthanc_itself_would_answer_implicit_vr_little_endian(
    chain: Chain, study: SyntheticStudy
) -> None:
    """Why the gateway must filter: asked directly, the source does transcode."""
    instance = study.instances[0]
    tail = f"studies/{study.study_uid}/series/{instance.series_uid}/instances/{instance.sop_instance_uid}"
    status, content_type, body = get(chain.direct(tail), f"{DICOM}; transfer-syntax={IMPLICIT}")
    assert status == 200
    assert syntaxes(content_type, body) == {IMPLICIT}


def instance_tail(study: SyntheticStudy, index: int = 0) -> str:
    instance = study.instances[index]
    return (
        f"studies/{study.study_uid}/series/{instance.series_uid}"
        f"/instances/{instance.sop_instance_uid}"
    )


@pytest.mark.checklist(23)
def test_only_forbidden_transfer_syntaxes_is_a_406_and_nothing_goes_upstream(
    chain: Chain, study: SyntheticStudy
) -> None:
    """Checklist item 23: never requests Implicit VR Little Endian or Explicit VR Big Endian
    via DICOMweb — refused with 406 problem+json before any upstream is contacted."""
    tail = instance_tail(study)
    rig_endpoint = (
        f"{chain.responding.endpoint}homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}/"
    )
    for accept in (
        f"{DICOM}; transfer-syntax={IMPLICIT}",
        f'{DICOM}; transfer-syntax="{BIG_ENDIAN}"',
        f"{DICOM}; transfer-syntax={IMPLICIT}, {DICOM}; Transfer-Syntax={BIG_ENDIAN}",
    ):
        seen_by_rig = len(exchanges(chain.responding.log()))
        status, content_type, body = get(chain.via_gateways(tail), accept)
        assert (status, content_type) == (406, "application/problem+json")
        problem = json.loads(body)
        assert problem["type"] == "urn:mado-gateway:problem:unsupported-transfer-syntax"
        assert "1.2.840.10008.1.2.1" in problem["detail"]  # what to ask for instead
        assert len(exchanges(chain.responding.log())) == seen_by_rig  # the IIG sent nothing

        # The responding gateway refuses alike, without a request to Orthanc.
        status, _, body = get(rig_endpoint + tail, accept)
        assert status == 406
        (last,) = exchanges(chain.responding.log())[-1:]
        assert (last["status"], last["attempts"], last["upstream_status"]) == (406, 0, None)


@pytest.mark.checklist(23)
def test_forbidden_ranges_are_dropped_when_another_is_acceptable(
    chain: Chain, study: SyntheticStudy
) -> None:
    """Checklist item 23: with another acceptable range left, the forbidden ones are dropped
    (PS3.18 §8.7.3.5.2) and the source answers in what remains."""
    accept = (
        f"{DICOM}; transfer-syntax={IMPLICIT}, {DICOM}; transfer-syntax={BIG_ENDIAN}; q=0.9, "
        f"{DICOM}; transfer-syntax={EXPLICIT}; q=0.5"
    )
    status, content_type, body = get(chain.via_gateways(f"studies/{study.study_uid}"), accept)
    assert status == 200
    assert syntaxes(content_type, body) == {EXPLICIT}
    assert len(split_multipart(body, content_type)) == len(study.instances)


@pytest.mark.checklist(23)
def test_an_accept_query_parameter_asking_for_them_is_a_406(
    chain: Chain, study: SyntheticStudy
) -> None:
    """Checklist item 23, for the accept query parameter (PS3.18 §8.3.3.1)."""
    query = "accept=multipart%2Frelated%3Btype%3Dapplication%2Fdicom%3Btransfer-syntax%3D1.2.840.10008.1.2"
    status, _, body = get(chain.via_gateways(f"{instance_tail(study)}?{query}"), None)
    assert status == 406
    assert json.loads(body)["type"] == "urn:mado-gateway:problem:unsupported-transfer-syntax"


@pytest.mark.checklist(20)
def test_the_clients_transfer_syntax_reaches_the_source(
    chain: Chain, study: SyntheticStudy
) -> None:
    """Checklist item 20: the client's Accept, with its transfer-syntax, reaches Orthanc
    through both gateways — Orthanc answers in the syntax asked for (JPEG Lossless)."""
    jpeg_lossless = "1.2.840.10008.1.2.4.70"
    accept = f"{DICOM}; transfer-syntax={jpeg_lossless}"
    status, content_type, body = get(chain.via_gateways(instance_tail(study, 3)), accept)
    assert status == 200
    assert syntaxes(content_type, body) == {jpeg_lossless}
