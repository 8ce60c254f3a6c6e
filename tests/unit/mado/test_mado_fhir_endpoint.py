"""Where a FHIR manifest says a series can be retrieved (MADO §X.1.2.2, Endpoint per series)."""

from __future__ import annotations

import pytest

from mado.fhir_reader import read_fhir
from tests.unit.mado.test_mado_readers import _bundle

RLUID_EXTENSION = (
    "https://profiles.ihe.net/RAD/MADO/StructureDefinition/MadoRetrieveLocationUIDExtension"
)


@pytest.mark.checklist(2)
@pytest.mark.parametrize("spelling", ["1.2.840.9.10.11.12", "urn:oid:1.2.840.9.10.11.12"])
def test_retrieve_location_uid_from_the_extension_and_base_url_from_the_address(
    spelling: str,
) -> None:
    manifest, notes = read_fhir(
        _bundle(
            {
                "connectionType": {"code": "dicom-wado-rs"},
                "address": "https://pacs.a.example.org/dicom-web/",
                "extension": [{"url": RLUID_EXTENSION, "valueString": spelling}],
            }
        )
    )
    assert notes == ()
    (series,) = manifest.series
    assert series.retrieve_location_uid == "1.2.840.9.10.11.12"
    assert series.retrieve_url == "https://pacs.a.example.org/dicom-web/"
