"""Session-wide fixtures of the deployment tests: podman with storage of its own, a Debian base
image made with debootstrap, the wheelhouse, and the gateway's image built from the
Dockerfile. Built once, removed at the end of the session.

The Imaging Document Source is the session's Orthanc (``tests/conftest.py``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.commands import argv
from tests.deploy.podman import REPO, Podman, download_wheels, make_base_image

IMAGE = "localhost/mado-gateway:test"


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    engine = Podman.create(tmp_path_factory.mktemp("podman"))
    try:
        yield engine
    finally:
        engine.reset()


@pytest.fixture(scope="session")
def base_image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    started = time.monotonic()
    image = make_base_image(podman, tmp_path_factory.mktemp("debootstrap"))
    print(f"base image by debootstrap + podman import: {time.monotonic() - started:.1f} s")
    return image


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return download_wheels(Path(sys.executable), tmp_path_factory.mktemp("wheels"))


def build_replacements(wheels: Path, base_image: str, tag: str) -> dict[str, str]:
    """The words of the README's build command that a test replaces."""
    return {
        "wheels=wheels": f"wheels={wheels}",
        "BASE_IMAGE=$BASE_IMAGE": f"BASE_IMAGE={base_image}",
        "mado-gateway:0.1.0": tag,
    }


@pytest.fixture(scope="session")
def image(podman: Podman, base_image: str, wheels: Path) -> str:
    started = time.monotonic()
    podman(*argv("build", build_replacements(wheels, base_image, IMAGE))[1:], cwd=REPO)
    print(f"podman build: {time.monotonic() - started:.1f} s")
    return IMAGE
