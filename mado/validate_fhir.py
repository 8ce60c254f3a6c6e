"""MADO content requirements of a FHIR manifest Bundle (MADO FHIR IG profiles, Rev 1.1 §6.X.3).

Checked: Bundle ``type`` = ``document`` with the Composition first (MadoFhirBundle); the
ImagingStudy's ``subject`` resolving to a Patient with an identifier, ``numberOfSeries`` 1..1
and consistent (MadoImagingStudy), the ``mado-reqproc-1`` invariant ("procedure code should be
present", reported as a warning since a KOS source has no procedure code to carry over); each
series' ``uid``, ``modality`` (1..1 in FHIR R4), ``numberOfInstances`` 1..1 and consistent,
``instance`` 1..*, ``endpoint`` 1..* with a MadoWadoEndpoint; each MadoWadoEndpoint's
``retrieve-location-uid`` extension 1..1, ``connectionType`` ``dicom-wado-rs``, and the
placeholder rule: an unknown address is ``http://notspecified`` *with* a data-absent-reason
extension.

:func:`check_fhir` never raises; it only returns findings.
"""

from __future__ import annotations

from typing import Any

from mado.normalise import to_text
from mado.report import Finding, Severity
from mado.vocab import EXT_DATA_ABSENT_REASON, EXT_RETRIEVE_LOCATION_UID, PLACEHOLDER_ADDRESSES

__all__ = ["check_fhir"]

_IG = "MADO FHIR IG "


def _list(obj: object, key: str) -> list[Any]:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, list) else []


def check_fhir(document: object) -> tuple[Finding, ...]:
    """Every MADO content-requirement finding for the decoded Bundle ``document``."""
    out: list[Finding] = []

    def add(
        path: str, rule: str, message: str, section: str, severity: Severity = Severity.ERROR
    ) -> None:
        out.append(
            Finding(path=path, rule=rule, message=message, severity=severity, section=section)
        )

    if not isinstance(document, dict):
        add("Bundle", "resourceType", "not a JSON object", _IG + "MadoFhirBundle")
        return tuple(out)
    if document.get("type") != "document":
        add(
            "Bundle.type",
            "fixed value",
            f"is {document.get('type')!r}, shall be 'document'",
            _IG + "MadoFhirBundle",
        )
    entries = [e.get("resource") for e in _list(document, "entry") if isinstance(e, dict)]
    resources = [r for r in entries if isinstance(r, dict)]
    index: dict[str, dict[str, Any]] = {}
    for entry in _list(document, "entry"):
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            resource = entry["resource"]
            if isinstance(entry.get("fullUrl"), str):
                index[entry["fullUrl"]] = resource
            index[f"{resource.get('resourceType')}/{resource.get('id')}"] = resource
    if not resources or resources[0].get("resourceType") != "Composition":
        add(
            "Bundle.entry[0]",
            "document",
            "the first entry shall be the Composition",
            _IG + "MadoFhirBundle",
        )
    studies = [r for r in resources if r.get("resourceType") == "ImagingStudy"]
    if len(studies) != 1:
        add(
            "Bundle.entry",
            "one study",
            f"{len(studies)} ImagingStudy resources; exactly one",
            _R11(),
        )
        if not studies:
            return tuple(out)
    study = studies[0]

    def resolve(ref: object) -> dict[str, Any] | None:
        key = ref.get("reference") if isinstance(ref, dict) else None
        return index.get(key) if isinstance(key, str) else None

    patient = resolve(study.get("subject"))
    if patient is None or patient.get("resourceType") != "Patient":
        add(
            "ImagingStudy.subject",
            "1..1",
            "does not resolve to a Patient in the Bundle",
            _IG + "MadoImagingStudy",
        )
    elif not any(
        isinstance(i, dict) and to_text(i.get("value")) for i in _list(patient, "identifier")
    ):
        add(
            "Patient.identifier",
            "1..*",
            "the patient has no identifier (Patient ID is R+)",
            _IG + "MadoPatient; " + _R11(),
        )
    series_list = _list(study, "series")
    if study.get("numberOfSeries") is None:
        add("ImagingStudy.numberOfSeries", "1..1", "missing", _IG + "MadoImagingStudy")
    elif study.get("numberOfSeries") != len(series_list):
        add(
            "ImagingStudy.numberOfSeries",
            "consistency",
            f"is {study.get('numberOfSeries')}, the study lists {len(series_list)} series",
            _IG + "MadoImagingStudy",
            Severity.WARNING,
        )
    if not any(
        isinstance(p, dict)
        and (
            to_text(p.get("text"))
            or any(isinstance(c, dict) and c.get("display") for c in _list(p, "coding"))
        )
        for p in _list(study, "procedureCode")
    ):
        add(
            "ImagingStudy.procedureCode",
            "mado-reqproc-1",
            "procedure code should be present with a text or display",
            _IG + "MadoImagingStudy",
            Severity.WARNING,
        )
    if not study.get("started"):
        add(
            "ImagingStudy.started",
            "R+",
            "missing (Study Date and Time are R+)",
            _R11() + " §6.X.2.6",
        )
    if not series_list:
        add("ImagingStudy.series", "1..*", "the study lists no series", _IG + "MadoImagingStudy")
    for i, series in enumerate(series_list):
        _series(add, series, f"ImagingStudy.series[{i}]", resolve)
    return tuple(out)


def _R11() -> str:
    return "MADO Rev 1.1 §6.X.2"


def _series(add: Any, series: Any, path: str, resolve: Any) -> None:
    section = _IG + "MadoImagingStudy"
    if not isinstance(series, dict):
        add(path, "structure", "not a JSON object", section)
        return
    if not to_text(series.get("uid")):
        add(f"{path}.uid", "1..1", "missing", section)
    modality = series.get("modality")
    if not (isinstance(modality, dict) and to_text(modality.get("code"))):
        add(f"{path}.modality", "1..1", "missing (FHIR R4 cardinality; MADO R+)", section)
    instances = _list(series, "instance")
    if not instances:
        add(f"{path}.instance", "1..*", "the series lists no instance", section)
    if series.get("numberOfInstances") is None:
        add(f"{path}.numberOfInstances", "1..1", "missing", section)
    elif series.get("numberOfInstances") != len(instances):
        add(
            f"{path}.numberOfInstances",
            "consistency",
            f"is {series.get('numberOfInstances')}, the series lists {len(instances)}",
            section,
            Severity.WARNING,
        )
    for j, instance in enumerate(instances):
        if not (isinstance(instance, dict) and to_text(instance.get("uid"))):
            add(f"{path}.instance[{j}].uid", "1..1", "missing", section)
    wado = [
        (k, endpoint)
        for k, ref in enumerate(_list(series, "endpoint"))
        if (endpoint := resolve(ref)) is not None
        and endpoint.get("resourceType") == "Endpoint"
        and isinstance(endpoint.get("connectionType"), dict)
        and endpoint["connectionType"].get("code") == "dicom-wado-rs"
    ]
    if not wado:
        add(
            f"{path}.endpoint",
            "1..* wado",
            "no MadoWadoEndpoint (connectionType dicom-wado-rs)",
            section,
        )
    for k, endpoint in wado:
        _endpoint(add, endpoint, f"{path}.endpoint[{k}]→Endpoint")


def _endpoint(add: Any, endpoint: dict[str, Any], path: str) -> None:
    section = _IG + "MadoWadoEndpoint"
    rluids = [
        e
        for e in _list(endpoint, "extension")
        if isinstance(e, dict) and e.get("url") == EXT_RETRIEVE_LOCATION_UID
    ]
    if len(rluids) != 1:
        add(
            f"{path}.extension[retrieve-location-uid]",
            "1..1",
            f"{len(rluids)} Retrieve Location UID extensions; exactly one",
            section,
        )
    address = to_text(endpoint.get("address"))
    absent = any(
        isinstance(e, dict) and e.get("url") == EXT_DATA_ABSENT_REASON
        for e in _list(endpoint.get("_address"), "extension")
    )
    if address is None:
        add(f"{path}.address", "1..1", "missing", section)
    elif address.lower().rstrip("/") in PLACEHOLDER_ADDRESSES:
        if address.lower().rstrip("/") != "http://notspecified":
            add(
                f"{path}.address",
                "placeholder",
                f"{address!r} used as 'no URL'; the profile requires 'http://notspecified'",
                section,
                Severity.WARNING,
            )
        if not absent:
            add(
                f"{path}.address",
                "data-absent-reason",
                "placeholder address without a data-absent-reason extension",
                section,
                Severity.WARNING,
            )
