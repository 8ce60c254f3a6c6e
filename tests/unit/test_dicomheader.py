"""The part header reader takes an object's encoding from its File Meta, as PS3.18 asks."""

from __future__ import annotations

import io

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from gateway.exchange import InstanceSeen
from gateway.relay.dicomheader import read_identity
from gateway.relay.partscan import PartScanner


def _part10(syntax: str | None, *, implicit: bool) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.2")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    if syntax is not None:
        meta.TransferSyntaxUID = UID(syntax)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientID = "PAT-24"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=implicit, little_endian=True, enforce_file_format=False)
    data = out.getvalue()
    return data if data[128:132] == b"DICM" else b"\0" * 128 + b"DICM" + data


@pytest.mark.checklist(24)
def test_an_object_without_a_stated_transfer_syntax_is_read_as_explicit_vr_little_endian() -> None:
    identity = read_identity(_part10(None, implicit=False))
    assert identity is not None
    assert identity.patient_id == "PAT-24"


@pytest.mark.checklist(25)
@pytest.mark.parametrize(
    ("stored", "implicit", "claimed"),
    [
        (ImplicitVRLittleEndian, True, ExplicitVRLittleEndian),
        (ExplicitVRLittleEndian, False, ImplicitVRLittleEndian),
    ],
)
def test_the_file_meta_decides_when_the_part_media_type_disagrees(
    stored: str, implicit: bool, claimed: str
) -> None:
    body = _part10(stored, implicit=implicit)
    seen: list[InstanceSeen] = []
    scanner = PartScanner("b7", seen.append)
    scanner.feed(
        b"--b7\r\nContent-Type: application/dicom; transfer-syntax="
        + claimed.encode()
        + b"\r\n\r\n"
        + body
        + b"\r\n--b7--\r\n"
    )
    scanner.close()
    assert [(i.patient_id, i.sop_class_uid) for i in seen] == [
        ("PAT-24", "1.2.840.10008.5.1.4.1.1.2")
    ]
