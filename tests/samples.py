"""Where the IHE sample manifests are: outside the repository, never copied into it.

The published MADO samples (IHE RAD.MADO implementation guide sources, CC BY 4.0) are not ours
to redistribute. They are read from ``$MADO_SAMPLES_DIR`` when set, else from
``../shared/samples`` beside the clone. A test that needs one calls :func:`kos_sample` or
:func:`fhir_sample`: when the file is absent the test is skipped with a message that says
where to put it — or fails, when ``MADO_REQUIRE_SAMPLES=1`` (CI sets it, so no sample test
is silently skipped there).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = [
    "FHIR_SAMPLE_NAME",
    "KOS_SAMPLE_NAME",
    "REQUIRE_ENV",
    "SAMPLES",
    "SAMPLES_ENV",
    "fhir_sample",
    "kos_sample",
]

SAMPLES_ENV = "MADO_SAMPLES_DIR"
REQUIRE_ENV = "MADO_REQUIRE_SAMPLES"
KOS_SAMPLE_NAME = "MADO_KOS_A.dcm"
FHIR_SAMPLE_NAME = "mado-1.2.250.1.59.40211.22756022.2.1.101-bundle.json"

_REPO = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get(SAMPLES_ENV) or _REPO.parent / "shared" / "samples")


def _sample(name: str) -> Path:
    path = SAMPLES / name
    if path.is_file():
        return path
    message = (
        f"IHE MADO sample {path} is absent: put the published samples ({KOS_SAMPLE_NAME}, "
        f"{FHIR_SAMPLE_NAME}) in {SAMPLES}, or set {SAMPLES_ENV} to the folder that holds them"
    )
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def kos_sample() -> Path:
    """The DICOM KOS sample manifest; skips (or fails under CI) when it is absent."""
    return _sample(KOS_SAMPLE_NAME)


def fhir_sample() -> Path:
    """The FHIR Bundle sample manifest; skips (or fails under CI) when it is absent."""
    return _sample(FHIR_SAMPLE_NAME)
