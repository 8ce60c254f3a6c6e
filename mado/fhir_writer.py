"""Write the manifest model as a FHIR-based MADO manifest (a document Bundle).

The inverse of :mod:`mado.fhir_reader`, following the same mapping (MADO FHIR IG mapping
table; MADO Rev 1.1 §6.X.3, §6.X.5). Resources: Composition (first, as a document Bundle
requires), Patient, ImagingStudy, one MadoWadoEndpoint per distinct (Retrieve Location UID,
Retrieve URL) pair, a MadoWebViewerEndpoint for the Display URI, one ServiceRequest per
Referenced Request item, the creator Device and Organization.

A series without a Retrieve URL gets the endpoint address ``http://notspecified`` with a
data-absent-reason extension, as MadoWadoEndpoint requires. Resource ids are derived from
the content, so the same manifest always gives the same Bundle (apart from ``timestamp``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mado.model import Code, Identifier, Instance, Manifest, RequestedProcedure, Series
from mado.normalise import fhir_date, fhir_datetime
from mado.vocab import (
    EXT_DATA_ABSENT_REASON,
    EXT_KEY_IMAGE_DESCRIPTION,
    EXT_KEY_IMAGE_FLAG,
    EXT_KO_DOCUMENT_TITLE,
    EXT_NUMBER_OF_FRAMES,
    EXT_RETRIEVE_LOCATION_UID,
    FHIR_DCM_SYSTEM,
    FHIR_SOP_CLASS_SYSTEM,
    URN_DICOM_UID,
)

__all__ = ["coding_of", "system_for_scheme", "write_fhir"]

JSON = dict[str, Any]
_SYSTEMS = {
    "SCT": "http://snomed.info/sct",
    "DCM": FHIR_DCM_SYSTEM,
    "LN": "http://loinc.org",
    "UCUM": "http://unitsofmeasure.org",
}
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
_CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
_MADO_CONNECTION_TYPES = "https://profiles.ihe.net/RAD/MADO/CodeSystem/MadoEndpointConnectionTypes"
_PAYLOAD_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-payload-type"
_MADO_SD = "https://profiles.ihe.net/RAD/MADO/StructureDefinition/"
_NOT_SPECIFIED = "http://notspecified"


def system_for_scheme(scheme: str) -> str:
    """The FHIR code system URI for a DICOM Coding Scheme Designator."""
    if scheme in _SYSTEMS:
        return _SYSTEMS[scheme]
    if ":" in scheme:
        return scheme
    if scheme and scheme.replace(".", "").isdigit():
        return f"urn:oid:{scheme}"
    return scheme


def coding_of(code: Code) -> JSON:
    """A FHIR Coding for ``code``."""
    return {"system": system_for_scheme(code.scheme), "code": code.value, "display": code.meaning}


def write_fhir(manifest: Manifest, *, timestamp: str | None = None) -> JSON:
    """The FHIR document Bundle for ``manifest`` (a JSON-ready dict)."""
    stamp = timestamp or datetime.now(UTC).isoformat(timespec="seconds")
    study = manifest.study
    endpoints: dict[tuple[str | None, str | None], JSON] = {}
    for series in manifest.series:
        key = (series.retrieve_location_uid, series.retrieve_url)
        if key not in endpoints:
            endpoints[key] = _wado_endpoint(f"wado-{len(endpoints) + 1}", *key)
    requests = [_service_request(f"request-{i + 1}", r) for i, r in enumerate(study.requests)]
    viewer = _viewer_endpoint(study.viewer_url) if study.viewer_url else None
    imaging_study = _imaging_study(manifest, endpoints, requests, viewer)
    entries: list[JSON] = [
        _composition(manifest, stamp, imaging_study),
        _patient(manifest),
        imaging_study,
        *endpoints.values(),
        *([viewer] if viewer else []),
        *requests,
        _device(manifest),
        _organization(manifest),
    ]
    return {
        "resourceType": "Bundle",
        "meta": {"profile": [_MADO_SD + "MadoFhirBundle"]},
        "identifier": {"system": URN_DICOM_UID, "value": f"urn:oid:{study.uid}"},
        "type": "document",
        "timestamp": stamp,
        "entry": [{"fullUrl": _full_url(r), "resource": r} for r in entries],
    }


def _full_url(resource: JSON) -> str:
    return f"urn:{resource['resourceType']}/{resource['id']}"


def _reference(resource: JSON) -> JSON:
    return {"reference": _full_url(resource), "type": resource["resourceType"]}


def _identifier(ident: Identifier, type_code: str | None = None, display: str = "") -> JSON:
    out: JSON = {}
    if type_code:
        out["type"] = {"coding": [{"system": _V2_0203, "code": type_code, "display": display}]}
    if ident.authority:
        out["system"] = (
            f"urn:oid:{ident.authority}"
            if (ident.authority_type or "").upper() == "ISO"
            else ident.authority
        )
    out["value"] = ident.value
    if ident.issuer:
        out["assigner"] = {"display": ident.issuer}
    return out


def _composition(manifest: Manifest, stamp: str, imaging_study: JSON) -> JSON:
    return {
        "resourceType": "Composition",
        "id": "manifest",
        "status": "final",
        "type": {
            "coding": [
                {
                    "system": "http://loinc.org",
                    "code": "18748-4",
                    "display": "Diagnostic imaging study",
                }
            ]
        },
        "subject": {"reference": "urn:Patient/patient", "type": "Patient"},
        "date": stamp,
        "author": [
            {"reference": "urn:Device/creator-device", "type": "Device"},
            {"reference": "urn:Organization/creator-organization", "type": "Organization"},
        ],
        "title": f"Imaging study manifest {manifest.study.description or manifest.study.uid}",
        "event": [{"detail": [_reference(imaging_study)]}],
    }


def _patient(manifest: Manifest) -> JSON:
    patient = manifest.patient
    out: JSON = {"resourceType": "Patient", "id": "patient"}
    identifiers = []
    if patient.id:
        identifiers.append({"use": "usual", **_identifier(patient.id)})
    identifiers += [{"use": "secondary", **_identifier(o)} for o in patient.other_ids]
    if identifiers:
        out["identifier"] = identifiers
    if patient.name:
        family, *given = patient.name.split("^")
        name: JSON = {"text": " ".join([*[g for g in given if g], family]).strip()}
        if family:
            name["family"] = family
        if any(given):
            name["given"] = [g for g in given if g]
        out["name"] = [name]
    gender = {"M": "male", "F": "female", "O": "other"}.get(patient.sex or "")
    if gender:
        out["gender"] = gender
    if birth := fhir_date(patient.birth_date):
        out["birthDate"] = birth
    return out


def _wado_endpoint(endpoint_id: str, rluid: str | None, url: str | None) -> JSON:
    out: JSON = {"resourceType": "Endpoint", "id": endpoint_id}
    out["meta"] = {"profile": [_MADO_SD + "MadoWadoEndpoint"]}
    if rluid:
        out["extension"] = [{"url": EXT_RETRIEVE_LOCATION_UID, "valueString": rluid}]
    out |= {
        "status": "active",
        "connectionType": {"system": _CONNECTION_TYPES, "code": "dicom-wado-rs"},
        "name": "WADO-RS endpoint",
        "payloadType": [
            {"coding": [{"system": _PAYLOAD_TYPES, "code": "none"}], "text": "DICOM WADO-RS"}
        ],
        "payloadMimeType": ["application/dicom"],
    }
    if url:
        out["address"] = url
    else:
        # MadoWadoEndpoint: only the RLUID known → placeholder address plus data-absent-reason.
        out["address"] = _NOT_SPECIFIED
        out["_address"] = {"extension": [{"url": EXT_DATA_ABSENT_REASON, "valueCode": "unknown"}]}
    return out


def _viewer_endpoint(url: str) -> JSON:
    return {
        "resourceType": "Endpoint",
        "id": "webviewer",
        "meta": {"profile": [_MADO_SD + "MadoWebViewerEndpoint"]},
        "status": "active",
        "connectionType": {"system": _MADO_CONNECTION_TYPES, "code": "web-viewer"},
        "payloadType": [{"coding": [{"system": _PAYLOAD_TYPES, "code": "none"}]}],
        "payloadMimeType": ["text/html"],
        "address": url,
    }


def _service_request(request_id: str, request: RequestedProcedure) -> JSON:
    identifiers = []
    if request.accession:
        identifiers.append(_identifier(request.accession, "ACSN", "Accession ID"))
    if request.placer_order:
        identifiers.append(_identifier(request.placer_order, "PLAC", "Placer Identifier"))
    out: JSON = {"resourceType": "ServiceRequest", "id": request_id}
    if identifiers:
        out["identifier"] = identifiers
    return out | {
        "status": "completed",
        "intent": "order",
        "subject": {"reference": "urn:Patient/patient", "type": "Patient"},
    }


def _device(manifest: Manifest) -> JSON:
    out: JSON = {"resourceType": "Device", "id": "creator-device"}
    if manifest.creator.manufacturer:
        out["manufacturer"] = manifest.creator.manufacturer
    return out


def _organization(manifest: Manifest) -> JSON:
    out: JSON = {"resourceType": "Organization", "id": "creator-organization"}
    if manifest.creator.institution:
        out["name"] = manifest.creator.institution
    return out


def _imaging_study(
    manifest: Manifest,
    endpoints: dict[tuple[str | None, str | None], JSON],
    requests: list[JSON],
    viewer: JSON | None,
) -> JSON:
    study = manifest.study
    offset = manifest.creator.timezone_offset
    identifiers: list[JSON] = [
        {
            "type": {
                "coding": [
                    {"system": FHIR_DCM_SYSTEM, "code": "110180", "display": "Study Instance UID"}
                ]
            },
            "system": URN_DICOM_UID,
            "value": f"urn:oid:{study.uid}",
        }
    ]
    if study.accession:
        identifiers.append(_identifier(study.accession, "ACSN", "Accession ID"))
    out: JSON = {"resourceType": "ImagingStudy", "id": str(study.uid)}
    out["meta"] = {"profile": [_MADO_SD + "MadoImagingStudy"]}
    if study.target_regions:
        out["extension"] = [
            {
                "url": _MADO_SD + "MadoAnatomicalRegionExtension",
                "valueCodeableConcept": {"coding": [coding_of(c) for c in study.target_regions]},
            }
        ]
    out |= {"identifier": identifiers, "status": "available"}
    if manifest.modalities:
        out["modality"] = [{"system": FHIR_DCM_SYSTEM, "code": m} for m in manifest.modalities]
    out["subject"] = {"reference": "urn:Patient/patient", "type": "Patient"}
    if started := fhir_datetime(study.date, study.time, offset):
        out["started"] = started
    if requests:
        out["basedOn"] = [
            {**_reference(r), **({"identifier": r["identifier"][0]} if r.get("identifier") else {})}
            for r in requests
        ]
    if viewer:
        out["endpoint"] = [_reference(viewer)]
    out["numberOfSeries"] = len(manifest.series)
    out["numberOfInstances"] = sum(len(s.instances) for s in manifest.series)
    if study.description:
        out["description"] = study.description
    out["series"] = [
        _series(s, endpoints[(s.retrieve_location_uid, s.retrieve_url)], offset)
        for s in manifest.series
    ]
    return out


def _series(series: Series, endpoint: JSON, offset: str | None) -> JSON:
    out: JSON = {"uid": str(series.uid)}
    if series.number is not None:
        out["number"] = series.number
    if series.modality:
        out["modality"] = {"system": FHIR_DCM_SYSTEM, "code": series.modality}
    if series.description:
        out["description"] = series.description
    out["numberOfInstances"] = len(series.instances)
    out["endpoint"] = [_reference(endpoint)]
    if series.body_site:
        out["bodySite"] = coding_of(series.body_site)
    if started := fhir_datetime(series.date, series.time, offset):
        out["started"] = started
    out["instance"] = [_instance(i) for i in series.instances]
    return out


def _instance(instance: Instance) -> JSON:
    out: JSON = {}
    extensions: list[JSON] = []
    if instance.frames is not None:
        extensions.append({"url": EXT_NUMBER_OF_FRAMES, "valueInteger": instance.frames})
    if instance.key_object:
        extensions.append(
            {
                "url": EXT_KO_DOCUMENT_TITLE,
                "valueCodeableConcept": {"coding": [coding_of(instance.key_object.title)]},
            }
        )
    for flag in instance.flagged_by:
        extensions.append(
            {
                "url": EXT_KEY_IMAGE_FLAG,
                "extension": [
                    {"url": "series", "valueOid": f"urn:oid:{flag.series_uid}"},
                    {"url": "instance", "valueOid": f"urn:oid:{flag.sop_instance_uid}"},
                    {"url": "sopClass", "valueOid": f"urn:oid:{flag.sop_class_uid}"},
                    {"url": "purpose", "valueCoding": coding_of(flag.purpose)},
                ],
            }
        )
    if instance.key_description:
        extensions.append(
            {"url": EXT_KEY_IMAGE_DESCRIPTION, "valueString": instance.key_description}
        )
    if extensions:
        out["extension"] = extensions
    out["uid"] = str(instance.sop_instance_uid)
    out["sopClass"] = {"system": FHIR_SOP_CLASS_SYSTEM, "code": f"urn:oid:{instance.sop_class_uid}"}
    if instance.number is not None:
        out["number"] = instance.number
    if instance.key_object and instance.key_object.description:
        out["title"] = instance.key_object.description
    return out
