"""Manifests whose series carry a location identifier that is not an OID (issue 16, class 2).

The MADO specification's own FHIR sample names its source ``ACME``. Real manifests will too.
The RAD-160 path stays OID-only; the consumer edge translates: an alias from the gateway's
``location_aliases`` (``POST /mado/retrieve``) or ``fetch --location ACME=OID``; failing that,
the series' Retrieve URL (``?retrieveurl=``, subject to the responding gateway's URL policy);
failing that, a clear 4xx / CLI message naming the series and the identifier.

Everything runs against Orthanc and real gateway processes: the session chain (default URL
policy: no Retrieve URL admitted) and a second chain whose responding gateway admits Orthanc's
origin and whose initiating gateway maps ``ACME``.
"""

from __future__ import annotations

import copy
import dataclasses
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from mado.create import SeriesLocation, build_manifest, datasets_from_metadata
from mado.fhir_writer import write_fhir
from mado.vocab import EXT_DATA_ABSENT_REASON, EXT_RETRIEVE_LOCATION_UID
from peers.chain import chain_configs
from peers.gateway import GatewayProcess
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study
from routing.ids import Oid
from tests.functional.chain import RLUID, Chain
from tests.functional.manifests import fetch, post_manifest, received, through
from tests.samples import fhir_sample

OPAQUE = "ACME"


@dataclasses.dataclass(frozen=True)
class Located:
    study: SyntheticStudy
    bundle: dict[str, Any]  # FHIR manifest with OID locations and Orthanc's Retrieve URL
    source_url: str

    def variant(self, tmp_path: Path, identifier: str, address: str | None) -> Path:
        """The manifest with every WADO endpoint naming ``identifier`` at ``address``
        (``None``: the address is absent, data-absent-reason and all)."""
        bundle = copy.deepcopy(self.bundle)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] != "Endpoint" or "MadoWadoEndpoint" not in str(
                resource.get("meta")
            ):
                continue
            resource["extension"] = [{"url": EXT_RETRIEVE_LOCATION_UID, "valueString": identifier}]
            if address is None:
                resource["address"] = "http://notspecified"
                resource["_address"] = {
                    "extension": [{"url": EXT_DATA_ABSENT_REASON, "valueCode": "unknown"}]
                }
            else:
                resource["address"] = address
                resource.pop("_address", None)
        path = tmp_path / f"manifest-{identifier}.json"
        path.write_bytes(orjson.dumps(bundle))
        return path


@pytest.fixture(scope="module")
def located(orthanc: OrthancServer) -> Located:
    study = make_study(seed="locations", series_count=2, instances_per_series=3, rows=16, columns=16)
    orthanc.upload_all([i.part10 for i in study.instances])
    with urllib.request.urlopen(
        f"{orthanc.dicomweb_url}studies/{study.study_uid}/metadata"
    ) as answer:
        metadata = orjson.loads(answer.read())
    location = SeriesLocation(retrieve_location_uid=Oid(RLUID), retrieve_url=orthanc.dicomweb_url)
    manifest = build_manifest(datasets_from_metadata(metadata), location)
    return Located(study=study, bundle=write_fhir(manifest), source_url=orthanc.dicomweb_url)


@pytest.fixture(scope="module")
def aliased(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    """A chain whose RIG admits Orthanc's origin as a Retrieve URL and whose IIG maps ACME."""
    folder = tmp_path_factory.mktemp("aliased-chain")
    responding, initiating = chain_configs(orthanc.dicomweb_url)
    responding["url_policy"] = {"allowed_origins": [orthanc.url]}
    initiating["location_aliases"] = {OPAQUE: RLUID}
    with (
        GatewayProcess(folder, responding, name="responding-a2") as a,
        GatewayProcess(folder, initiating, name="initiating-b2") as b,
    ):
        yield Chain(responding=a, initiating=b, orthanc=orthanc)








def expected(located: Located) -> dict[str, bytes]:
    return {i.sop_instance_uid: i.part10 for i in located.study.instances}


def post(chain: Chain, manifest: bytes) -> tuple[int, str, bytes]:
    return post_manifest(
        chain.initiating.url, manifest, headers={"Content-Type": "application/fhir+json"}
    )


def parts_of(content_type: str, body: bytes) -> list[bytes]:
    from peers.multipart import split_multipart

    return [p.body for p in split_multipart(body, content_type)]


# -- fetch --location ---------------------------------------------------------------------------


def test_fetch_maps_an_opaque_identifier_given_on_the_command_line(
    located: Located, chain: Chain, tmp_path: Path
) -> None:
    manifest = located.variant(tmp_path, OPAQUE, None)
    result = through(chain, manifest, tmp_path / "out", "--location", f"{OPAQUE}={RLUID}")
    assert result.returncode == 0, result.stderr
    assert received(tmp_path / "out") == expected(located)


@pytest.mark.parametrize(
    ("value", "message"),
    [("ACME", "IDENTIFIER=OID"), ("ACME=1.02", "not an OID"), ("=1.2.3", "IDENTIFIER=OID")],
)
def test_fetch_refuses_a_malformed_location_option(
    located: Located, tmp_path: Path, value: str, message: str
) -> None:
    result = fetch(
        str(located.variant(tmp_path, OPAQUE, None)),
        "--location",
        value,
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 2
    assert "--location" in result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# -- the Retrieve URL fallback -------------------------------------------------------------------


def test_unmapped_identifier_falls_back_to_the_retrieve_url(
    located: Located, aliased: Chain, tmp_path: Path
) -> None:
    manifest = located.variant(tmp_path, "SOMEWHERE-ELSE", located.source_url)
    result = through(aliased, manifest, tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert received(tmp_path / "out") == expected(located)
    status, content_type, body = post(aliased, manifest.read_bytes())
    assert status == 200, body[:300]
    assert sorted(parts_of(content_type, body)) == sorted(expected(located).values())


def test_the_fallback_is_subject_to_the_responding_gateways_url_policy(
    located: Located, chain: Chain, tmp_path: Path
) -> None:
    manifest = located.variant(tmp_path, OPAQUE, located.source_url)
    result = through(chain, manifest, tmp_path / "out")
    assert result.returncode == 1
    assert "HTTP 403" in result.stderr
    assert "retrieveurl=" in result.stderr
    assert "Traceback" not in result.stderr
    status, content_type, _ = post(chain, manifest.read_bytes())
    assert status == 403  # the responding gateway's refusal, relayed by the initiating one
    assert content_type == "application/problem+json"


# -- location_aliases in the gateway configuration -----------------------------------------------


def test_post_manifest_maps_an_opaque_identifier_from_the_configuration(
    located: Located, aliased: Chain, tmp_path: Path
) -> None:
    manifest = located.variant(tmp_path, OPAQUE, None)
    status, content_type, body = post(aliased, manifest.read_bytes())
    assert status == 200, body[:300]
    assert sorted(parts_of(content_type, body)) == sorted(expected(located).values())


# -- nothing to route by -------------------------------------------------------------------------


def test_unroutable_series_is_a_clear_problem_and_message(
    located: Located, chain: Chain, tmp_path: Path
) -> None:
    manifest = located.variant(tmp_path, OPAQUE, None)
    status, content_type, body = post(chain, manifest.read_bytes())
    assert status == 422
    assert content_type == "application/problem+json"
    problem = orjson.loads(body)
    assert problem["type"] == "urn:mado-gateway:problem:unroutable-series"
    assert OPAQUE in problem["detail"]
    assert located.study.series_uids[0] in problem["detail"] or located.study.study_uid in problem[
        "detail"
    ]
    result = through(chain, manifest, tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "?" not in result.stderr.split(":", 1)[1]
    assert OPAQUE in result.stderr
    assert "--location" in result.stderr


def test_the_specifications_own_sample_bundle_is_never_a_500(chain: Chain, tmp_path: Path) -> None:
    """``ACME`` at ``http://example.com/wado``: the fallback goes to the responding gateway,
    whose default URL policy refuses it — a 4xx, never an internal error."""
    sample = fhir_sample().read_bytes()
    status, content_type, body = post(chain, sample)
    assert 400 <= status < 500, body[:300]
    assert content_type == "application/problem+json"
    result = through(chain, fhir_sample(), tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "series ?" not in result.stderr
    assert "HTTP 403" in result.stderr
