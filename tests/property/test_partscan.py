"""The part scanner and header reader find every instance, however the body is cut."""

from __future__ import annotations

import io

import pydicom
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from gateway.exchange import InstanceSeen as HeaderIdentity
from gateway.relay.dicomheader import read_identity
from gateway.relay.partscan import HEADER_BYTES, PartScanner
from peers.studies import make_study

STUDY = make_study(seed="partscan", series_count=1, instances_per_series=4, rows=8, columns=8)
BIG = make_study(seed="partscan-big", series_count=1, instances_per_series=1, rows=160, columns=160)


def implicit_with_sequence() -> bytes:
    """An Implicit VR object with an undefined-length sequence before the patient module."""
    ds = pydicom.dcmread(io.BytesIO(STUDY.instances[0].part10))
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    ds.ReferencedImageSequence = Sequence([item])
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=True, little_endian=True)
    return out.getvalue()


OBJECTS = [i.part10 for i in STUDY.instances] + [BIG.instances[0].part10, implicit_with_sequence()]


def expected(part10: bytes) -> HeaderIdentity:
    ds = pydicom.dcmread(io.BytesIO(part10), stop_before_pixels=True)
    return HeaderIdentity(
        sop_class_uid=ds.SOPClassUID,
        sop_instance_uid=ds.SOPInstanceUID,
        study_uid=ds.StudyInstanceUID,
        series_uid=ds.SeriesInstanceUID,
        patient_id=ds.PatientID,
        patient_id_issuer=ds.get("IssuerOfPatientID"),
        patient_name=str(ds.PatientName),
    )


def test_header_reader_matches_pydicom_on_each_object() -> None:
    for part10 in OBJECTS:
        assert read_identity(part10) == expected(part10)


def test_header_reader_tolerates_garbage_and_truncation() -> None:
    assert read_identity(b"") is None
    assert read_identity(b"\x00" * 200) is None
    truncated = read_identity(OBJECTS[0][:300])
    assert truncated is not None
    assert truncated.patient_id is None


def body_of(parts: list[bytes], boundary: str, with_length: bool) -> bytes:
    out = bytearray(b"preamble text\r\n" if not with_length else b"")
    for payload in parts:
        out += f"--{boundary}\r\nContent-Type: application/dicom\r\n".encode()
        if with_length:
            out += f"Content-Length: {len(payload)}\r\n".encode()
        out += b"\r\n" + payload + b"\r\n"
    out += f"--{boundary}--\r\nepilogue".encode()
    return bytes(out)


@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.integers(min_value=0, max_value=len(OBJECTS) - 1), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=80_000), max_size=20),
    with_length=st.booleans(),
    boundary=st.sampled_from(["b", "abc-123", "6411885e-4b3f-4996-8e57-d33bbd5b804d-32089752"]),
)
def test_scanner_finds_every_instance_however_the_body_is_chunked(
    picks: list[int], cuts: list[int], with_length: bool, boundary: str
) -> None:
    parts = [OBJECTS[i] for i in picks]
    body = body_of(parts, boundary, with_length)
    points = sorted({min(c, len(body)) for c in cuts})
    seen: list[HeaderIdentity] = []
    scanner = PartScanner(boundary, seen.append)
    for a, b in zip([0, *points], [*points, len(body)], strict=True):
        scanner.feed(body[a:b])
    scanner.close()
    assert seen == [expected(p) for p in parts]
    assert scanner.unreadable == 0


def test_non_dicom_parts_are_counted_as_unreadable() -> None:
    seen: list[HeaderIdentity] = []
    scanner = PartScanner("b", seen.append)
    scanner.feed(body_of([b"not dicom", OBJECTS[0]], "b", with_length=False))
    scanner.close()
    assert [s.sop_instance_uid for s in seen] == [STUDY.instances[0].sop_instance_uid]
    assert scanner.unreadable == 1


def test_big_part_is_larger_than_the_capture() -> None:
    assert len(BIG.instances[0].part10) > HEADER_BYTES
