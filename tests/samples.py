"""Where the shared reference data is (the IHE sample manifests, the protocol digest):
outside the repository, never copied into it.

The published MADO samples (IHE RAD.MADO implementation guide sources, CC BY 4.0) are not ours
to redistribute. They are read from ``$MADO_SAMPLES_DIR`` when set, else from
``../shared/samples`` beside the clone; other shared files from ``$MADO_SHARED_DIR``, else
``../shared``. A test that needs one calls :func:`kos_sample`, :func:`fhir_sample` or
:func:`shared_file`: when the file is absent the test fails with a message that says where
to put it. Nothing in the suite skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = [
    "FHIR_SAMPLE_NAME",
    "KOS_SAMPLE_NAME",
    "SAMPLES",
    "SAMPLES_ENV",
    "SHARED",
    "SHARED_ENV",
    "fhir_sample",
    "kos_sample",
    "shared_file",
]

SAMPLES_ENV = "MADO_SAMPLES_DIR"
SHARED_ENV = "MADO_SHARED_DIR"
KOS_SAMPLE_NAME = "MADO_KOS_A.dcm"
FHIR_SAMPLE_NAME = "mado-1.2.250.1.59.40211.22756022.2.1.101-bundle.json"

_REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get(SHARED_ENV) or _REPO.parent / "shared")
SAMPLES = Path(os.environ.get(SAMPLES_ENV) or SHARED / "samples")


def _present(path: Path, where: str) -> Path:
    """``path`` when it is a file; else the test fails saying ``where`` to put it. Never a
    skip: a test that cannot read what it checks has checked nothing."""
    if path.is_file():
        return path
    pytest.fail(f"{path} is absent: {where}", pytrace=False)


def _sample(name: str) -> Path:
    return _present(
        SAMPLES / name,
        f"put the published IHE MADO samples ({KOS_SAMPLE_NAME}, {FHIR_SAMPLE_NAME}) in "
        f"{SAMPLES}, or set {SAMPLES_ENV} to the folder that holds them",
    )


def shared_file(name: str) -> Path:
    """A file of the shared reference folder (e.g. ``spec-digest.md``)."""
    return _present(SHARED / name, f"set {SHARED_ENV} to the folder that holds it")


def kos_sample() -> Path:
    """The DICOM KOS sample manifest; skips (or fails under CI) when it is absent."""
    return _sample(KOS_SAMPLE_NAME)


def fhir_sample() -> Path:
    """The FHIR Bundle sample manifest; skips (or fails under CI) when it is absent."""
    return _sample(FHIR_SAMPLE_NAME)
