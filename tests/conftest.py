"""Session-wide real peers: one Orthanc with a 200-instance study, shared by the tests that
need an Imaging Document Source. Started once, stopped at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peers.chain import chain_configs
from peers.gateway import GatewayProcess
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study
from tests.functional.chain import Chain


@pytest.fixture(scope="session")
def study() -> SyntheticStudy:
    """Two CT series of 100 instances each (the issue's 200-instance study)."""
    return make_study(
        seed="tests-main", series_count=2, instances_per_series=100, rows=64, columns=64
    )


@pytest.fixture(scope="session")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, study: SyntheticStudy
) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path_factory.mktemp("orthanc")) as server:
        server.upload_all([instance.part10 for instance in study.instances])
        yield server


@pytest.fixture(scope="session")
def chain(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    folder = tmp_path_factory.mktemp("chain")
    responding, initiating = chain_configs(orthanc.dicomweb_url)
    with (
        GatewayProcess(folder, responding, name="responding-a") as a,
        GatewayProcess(folder, initiating, name="initiating-b") as b,
    ):
        yield Chain(responding=a, initiating=b, orthanc=orthanc)
