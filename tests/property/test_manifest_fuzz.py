"""Whatever bytes arrive as a manifest, the readers raise only the package's own errors
(issue 16, class 12): mutated KOS and FHIR manifests — truncated, bit-flipped, JSON values
swapped for other types — are read, validated, planned and turned into URLs, and anything that
goes wrong is a :class:`mado.errors.ManifestError`."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.consumer.urls import Target, urls_for
from mado.create import SeriesLocation, create_kos
from mado.errors import ManifestError
from mado.fhir_writer import write_fhir
from mado.kos_reader import read_kos
from mado.load import encode, read_bytes
from mado.plan import plan_key_images, plan_series, plan_study
from mado.validate import validate_bytes
from routing.ids import HomeCommunityId, Oid
from tests.functional.mado.conftest import build_study_metadata
from tests.samples import fhir_sample, kos_sample

fuzz = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TARGET = Target(gateway="https://iig.example/wado/", home_community_id=HomeCommunityId("1.2.3"))


def _generated_kos() -> bytes:
    location = SeriesLocation(
        retrieve_location_uid=Oid("1.2.3.4.5"), retrieve_url="https://pacs.example/rs/"
    )
    buffer = io.BytesIO()
    create_kos(build_study_metadata()[0], location).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


KOS = _generated_kos()
FHIR = orjson.dumps(write_fhir(read_kos(pydicom.dcmread(io.BytesIO(KOS)))[0]))


def consume(data: bytes) -> None:
    """Everything a manifest body goes through in fetch, manifest validate|convert and POST."""
    try:
        manifest = read_bytes(data, "fuzz").manifest
        validate_bytes(data, "fuzz")
        encode(manifest, "fhir")
        encode(manifest, "kos")
        for plan in (plan_study(manifest), plan_key_images(manifest)):
            for request in plan.requests + plan.key_object_series:
                urls_for(request, TARGET)
                urls_for(request, Target())
        plan_series(manifest, modalities=["CT"])
    except ManifestError:
        pass


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "cut", "splice", "drop"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "splice":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def type_swapped(draw: st.DrawFn, original: bytes) -> bytes:
    document = orjson.loads(original)
    paths = _paths(document)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(paths[1:]))
        parent = document
        try:
            for key in path[:-1]:
                parent = parent[key]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier swap removed this path
        # An earlier swap may have put an object where a list was (or the reverse): a list
        # index is no object member name, so the path is gone too.
        key = path[-1]
        member = isinstance(parent, dict) and isinstance(key, str)
        item = isinstance(parent, list) and isinstance(key, int) and key < len(parent)
        if member or item:
            parent[key] = draw(JSON_VALUES)
    return orjson.dumps(document)


@fuzz
@given(st.data())
def test_mutated_generated_kos_raises_only_manifest_errors(data: st.DataObject) -> None:
    consume(data.draw(mutated(KOS)))


@fuzz
@given(st.data())
def test_mutated_generated_fhir_raises_only_manifest_errors(data: st.DataObject) -> None:
    consume(data.draw(mutated(FHIR)))


@fuzz
@given(st.data())
def test_type_swapped_generated_fhir_raises_only_manifest_errors(data: st.DataObject) -> None:
    consume(data.draw(type_swapped(FHIR)))


@pytest.fixture(scope="module")
def samples() -> tuple[bytes, bytes]:
    return kos_sample().read_bytes(), fhir_sample().read_bytes()


@fuzz
@given(st.data())
def test_mutated_sample_kos_raises_only_manifest_errors(
    samples: tuple[bytes, bytes], data: st.DataObject
) -> None:
    consume(data.draw(mutated(samples[0])))


@fuzz
@given(st.data())
def test_type_swapped_sample_fhir_raises_only_manifest_errors(
    samples: tuple[bytes, bytes], data: st.DataObject
) -> None:
    consume(data.draw(type_swapped(samples[1])))


@fuzz
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_a_dicom_preamble_raise_only_manifest_errors(tail: bytes) -> None:
    consume(b"\x00" * 128 + b"DICM" + tail)
