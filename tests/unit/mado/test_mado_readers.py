"""Reading the two real sample manifests into the model (MADO Rev 1.1 §6.X.2, §6.X.3)."""

from __future__ import annotations

import orjson
import pydicom
import pytest

from mado.errors import InvalidManifest, NotAManifest
from mado.fhir_reader import read_fhir
from mado.kos_reader import read_kos
from mado.report import Severity
from tests.samples import fhir_sample, kos_sample

STUDY_UID = "1.2.250.1.59.40211.22756022.2.1.101"


@pytest.mark.checklist(1)
def test_kos_sample_series_locations_and_instances() -> None:
    manifest, notes = read_kos(pydicom.dcmread(kos_sample()))
    assert notes == ()
    assert manifest.study.uid == STUDY_UID
    assert [len(s.instances) for s in manifest.series] == [50, 36]
    assert {s.retrieve_url for s in manifest.series} == {"https://dicomserver.com/AET/rs/"}
    assert [s.retrieve_location_uid for s in manifest.series] == [
        "1.3.6.1.4.1.19376.1.1.200.1",
        "1.3.6.1.4.1.19376.1.1.200.2",
    ]


def test_kos_sample_modality_comes_from_the_image_library() -> None:
    # The Referenced Series Sequence has no Modality; TID 1602 says CT (and so does the bundle).
    manifest, _ = read_kos(pydicom.dcmread(kos_sample()))
    assert [s.modality for s in manifest.series] == ["CT", "CT"]
    assert [s.description for s in manifest.series] == ["Series A1", "Series A2"]
    assert manifest.series[0].instances[0].number == 1


def test_kos_sample_patient_study_and_requests() -> None:
    manifest, _ = read_kos(pydicom.dcmread(kos_sample()))
    assert manifest.patient.id is not None
    assert manifest.patient.id.value == "UV59569735"
    assert manifest.patient.id.authority == "1.3.6.1.4.1.19376.1.1.100.1"
    assert manifest.patient.id.issuer == "ACME_HOSPITAL"
    assert [o.value for o in manifest.patient.other_ids] == ["UV59569735"]
    request = manifest.study.requests[0]
    assert request.accession is not None and request.accession.value == "1731954284869428"
    assert request.placer_order is not None and request.placer_order.value == "5357606535677609"
    assert manifest.study.viewer_url is not None
    assert manifest.study.viewer_url.startswith("https://dicomviewer/IHEInvokeImageDisplay")
    assert manifest.creator.timezone_offset == "+0100"


def test_fhir_sample_non_oid_rluid_is_dropped_and_reported() -> None:
    manifest, notes = read_fhir(orjson.loads(fhir_sample().read_bytes()))
    assert [s.retrieve_location_uid for s in manifest.series] == [None, None]
    assert [s.retrieve_url for s in manifest.series] == ["http://example.com/wado"] * 2
    assert [n.severity for n in notes] == [Severity.ERROR, Severity.ERROR]
    assert "'ACME' is not an OID" in notes[0].message


def _bundle(endpoint: dict[str, object]) -> dict[str, object]:
    return {
        "resourceType": "Bundle",
        "type": "document",
        "entry": [
            {
                "fullUrl": "urn:Endpoint/e",
                "resource": {"resourceType": "Endpoint", "id": "e", **endpoint},
            },
            {
                "fullUrl": "urn:ImagingStudy/s",
                "resource": {
                    "resourceType": "ImagingStudy",
                    "id": "s",
                    "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
                    "series": [
                        {
                            "uid": "1.2.3.4",
                            "endpoint": [{"reference": "urn:Endpoint/e"}],
                            "instance": [
                                {
                                    "uid": "1.2.3.4.5",
                                    "sopClass": {"code": "urn:oid:1.2.840.10008.5.1.4.1.1.2"},
                                }
                            ],
                        }
                    ],
                },
            },
        ],
    }


def test_fhir_placeholder_address_with_data_absent_reason_is_no_url() -> None:
    manifest, notes = read_fhir(
        _bundle(
            {
                "connectionType": {"code": "dicom-wado-rs"},
                "address": "http://doesnotexist",
                "_address": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason",
                            "valueCode": "unknown",
                        }
                    ]
                },
                "extension": [
                    {
                        "url": "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoRetrieveLocationUIDExtension",
                        "valueString": "oid:213.323245.462.63.56",
                    }
                ],
            }
        )
    )
    assert notes == ()
    series = manifest.series[0]
    assert series.retrieve_url is None
    assert series.retrieve_location_uid == "213.323245.462.63.56"
    assert manifest.study.uid == "1.2.3"


def test_fhir_notspecified_address_is_no_url() -> None:
    manifest, _ = read_fhir(
        _bundle({"connectionType": {"code": "dicom-wado-rs"}, "address": "http://notspecified"})
    )
    assert manifest.series[0].retrieve_url is None


def test_bundle_without_imaging_study_is_not_a_manifest() -> None:
    with pytest.raises(NotAManifest, match="no ImagingStudy"):
        read_fhir({"resourceType": "Bundle", "entry": []})


def test_patient_resource_is_not_a_manifest() -> None:
    with pytest.raises(NotAManifest, match="expected a Bundle, found Patient"):
        read_fhir({"resourceType": "Patient"})


def test_invalid_series_uid_names_the_element() -> None:
    bundle = _bundle({"connectionType": {"code": "dicom-wado-rs"}, "address": "http://x"})
    study = bundle["entry"][1]["resource"]  # type: ignore[index]
    study["series"][0]["uid"] = "1.2.x"
    with pytest.raises(InvalidManifest, match=r"ImagingStudy\.series\[0\]\.uid"):
        read_fhir(bundle)


def test_ct_image_is_not_a_manifest() -> None:
    ds = pydicom.Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    with pytest.raises(NotAManifest, match="not a Key Object Selection document"):
        read_kos(ds)
