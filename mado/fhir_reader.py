"""Read a FHIR-based MADO manifest (a document Bundle, parsed with orjson) into the model.

Mapping (MADO FHIR IG mapping table, MADO Rev 1.1 §6.X.3 and §6.X.5; seed §10):

* study: the one ImagingStudy; ``identifier`` with system ``urn:dicom:uid`` (value
  ``urn:oid:<uid>``) is the Study Instance UID, an identifier typed ``ACSN`` the study-level
  Accession Number (MADO Appendix A Table A-2); ``started`` gives Study Date, Time and the
  timezone offset; ``basedOn`` → ServiceRequest identifiers ``ACSN``/``PLAC`` give the
  Referenced Request Sequence items; the ``MadoAnatomicalRegionExtension`` codings the study
  Target Regions; a study-level endpoint that is not WADO-RS is the viewer (Display URI).
* series: ``uid``, ``number``, ``modality``, ``description``, ``started``, ``bodySite``; its
  ``endpoint`` → MadoWadoEndpoint: ``address`` is the Retrieve URL unless it carries a
  data-absent-reason extension or is ``http://notspecified``/``http://notapplicable``, and
  the ``MadoRetrieveLocationUIDExtension`` value is the Retrieve Location UID.
* instances: ``uid``, ``sopClass``, ``number``, ``MadoNumberOfFrames``; for KOS/KIN instances
  ``MadoKeyObjectDocumentTitle`` and ``title`` (the Key Object Description); the key-image
  flags from this project's extensions (see :mod:`mado.vocab`).
* patient: ``subject`` → Patient: the ``usual`` (else first) identifier is the Patient ID, the
  ``secondary`` ones the Other Patient IDs; ``urn:oid:`` systems become the issuer OID.
* creator: the Composition's Device author ``manufacturer`` and Organization ``name``.

Contract: :func:`read_fhir` takes the decoded JSON and returns the manifest and the findings
normalisation produced. Raises :class:`~mado.errors.NotAManifest` when the document is not a
Bundle with an ImagingStudy, :class:`~mado.errors.InvalidManifest` for an invalid or missing
UID or a second ImagingStudy.
"""

from __future__ import annotations

from typing import Any

from mado import fhir_json
from mado.errors import InvalidManifest, NotAManifest
from mado.fhir_json import JSON
from mado.model import (
    Code,
    Creator,
    Identifier,
    Instance,
    KeyImageFlag,
    KeyObjectSummary,
    Manifest,
    Patient,
    RequestedProcedure,
    Series,
    Study,
)
from mado.normalise import (
    split_fhir_datetime,
    to_dicom_date,
    to_int,
    to_oid,
    to_text,
    to_uid,
    to_url,
)
from mado.report import Finding, Severity
from mado.vocab import (
    EXT_DATA_ABSENT_REASON,
    EXT_KEY_IMAGE_DESCRIPTION,
    EXT_KEY_IMAGE_FLAG,
    EXT_KO_DOCUMENT_TITLE,
    EXT_NUMBER_OF_FRAMES,
    EXT_RETRIEVE_LOCATION_UID,
    OF_INTEREST,
    URN_DICOM_UID,
)

__all__ = ["code_from_coding", "read_fhir", "scheme_for_system"]

_ANATOMICAL_REGION = "MadoAnatomicalRegionExtension"
_SCHEMES = {
    "http://snomed.info/sct": "SCT",
    "http://dicom.nema.org/resources/ontology/DCM": "DCM",
    "http://loinc.org": "LN",
    "http://unitsofmeasure.org": "UCUM",
}


def scheme_for_system(system: object) -> str:
    """The DICOM Coding Scheme Designator for a FHIR code system URI (the URI if unknown)."""
    if not system or not isinstance(system, str):
        return ""
    if system in _SCHEMES:
        return _SCHEMES[system]
    prefix = "urn:oid:"
    return system[len(prefix) :] if system.startswith(prefix) else system


def code_from_coding(coding: JSON | None) -> Code | None:
    """A :class:`Code` from a FHIR Coding, or ``None`` when it has no code."""
    if not isinstance(coding, dict):
        return None
    value = to_text(coding.get("code"))
    if value is None:
        return None
    return Code(
        value=value,
        scheme=scheme_for_system(coding.get("system")),
        meaning=to_text(coding.get("display")) or value,
    )


def read_fhir(document: object) -> tuple[Manifest, tuple[Finding, ...]]:
    """The manifest in a decoded FHIR Bundle and the findings reading it produced."""
    if not isinstance(document, dict) or document.get("resourceType") != "Bundle":
        kind = (
            document.get("resourceType") if isinstance(document, dict) else type(document).__name__
        )
        raise NotAManifest(
            f"not a FHIR manifest: expected a Bundle, found {kind or 'no resourceType'}"
        )
    resources = fhir_json.index(document)
    studies = [r for r in fhir_json.resources(document) if r.get("resourceType") == "ImagingStudy"]
    if not studies:
        raise NotAManifest("FHIR bundle has no ImagingStudy: not a MADO manifest")
    if len(studies) > 1:
        raise InvalidManifest(
            "Bundle.entry.resource(ImagingStudy)",
            f"{len(studies)} ImagingStudy resources: a MADO manifest references exactly one study",
        )
    study = studies[0]
    notes: list[Finding] = []
    date, time, offset = split_fhir_datetime(study.get("started"))
    series = tuple(
        _series(item, f"ImagingStudy.series[{i}]", resources, notes)
        for i, item in enumerate(fhir_json.dicts(study, "series"))
    )
    if offset is None:
        offset = next(
            (
                o
                for item in fhir_json.dicts(study, "series")
                if (o := split_fhir_datetime(item.get("started"))[2])
            ),
            None,
        )
    manifest = Manifest(
        patient=_patient(resources.get(fhir_json.ref(study.get("subject")) or "")),
        study=Study(
            uid=_study_uid(study),
            date=date,
            time=time,
            description=to_text(study.get("description")),
            accession=_accession(study),
            requests=tuple(_request(b, resources) for b in fhir_json.list_member(study, "basedOn")),
            target_regions=_regions(study),
            viewer_url=_viewer(study, resources),
        ),
        series=series,
        creator=_creator(document, resources, offset),
    )
    return manifest, tuple(notes)


def _has_type(identifier: JSON, code: str) -> bool:
    return any(
        isinstance(c, dict) and c.get("code") == code
        for c in fhir_json.list_member(identifier.get("type"), "coding")
    )


def _study_uid(study: JSON) -> Any:
    for i, ident in enumerate(fhir_json.list_member(study, "identifier")):
        if isinstance(ident, dict) and ident.get("system") == URN_DICOM_UID:
            return to_uid(ident.get("value"), f"ImagingStudy.identifier[{i}].value")
    raise InvalidManifest(
        "ImagingStudy.identifier", "no Study Instance UID (identifier with system urn:dicom:uid)"
    )


def _identifier(ident: object) -> Identifier | None:
    if not isinstance(ident, dict):
        return None
    value = to_text(ident.get("value"))
    if value is None:
        return None
    system = to_text(ident.get("system"))
    authority = authority_type = None
    if system is not None:
        oid = to_oid(system) if system.lower().startswith(("urn:oid:", "oid:")) else None
        authority, authority_type = (str(oid), "ISO") if oid else (system, "URI")
    assigner = ident.get("assigner")
    issuer = to_text(assigner.get("display")) if isinstance(assigner, dict) else None
    return Identifier(
        value=value, authority=authority, authority_type=authority_type, issuer=issuer
    )


def _accession(study: JSON) -> Identifier | None:
    for ident in fhir_json.list_member(study, "identifier"):
        if isinstance(ident, dict) and _has_type(ident, "ACSN"):
            return _identifier(ident)
    return None


def _request(based_on: object, resources: dict[str, JSON]) -> RequestedProcedure:
    accession = placer = None
    target = resources.get(fhir_json.ref(based_on) or "")
    identifiers = fhir_json.list_member(target, "identifier") if target else []
    if isinstance(based_on, dict) and isinstance(based_on.get("identifier"), dict):
        identifiers = [based_on["identifier"], *identifiers]
    for ident in identifiers:
        if not isinstance(ident, dict):
            continue
        if _has_type(ident, "PLAC") and placer is None:
            placer = _identifier(ident)
        elif not _has_type(ident, "PLAC") and accession is None:
            accession = _identifier(ident)
    return RequestedProcedure(accession=accession, placer_order=placer)


def _regions(study: JSON) -> tuple[Code, ...]:
    regions: list[Code] = []
    for ext in fhir_json.list_member(study, "extension"):
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith(_ANATOMICAL_REGION):
            for coding in fhir_json.list_member(ext.get("valueCodeableConcept"), "coding"):
                if code := code_from_coding(coding):
                    regions.append(code)
    return tuple(regions)


def _is_wado(endpoint: JSON) -> bool:
    connection = endpoint.get("connectionType")
    return isinstance(connection, dict) and connection.get("code") == "dicom-wado-rs"


def _address(endpoint: JSON) -> str | None:
    meta = endpoint.get("_address")
    if fhir_json.extension(meta, EXT_DATA_ABSENT_REASON):
        return None
    return to_url(endpoint.get("address"))


def _viewer(study: JSON, resources: dict[str, JSON]) -> str | None:
    for ref in fhir_json.list_member(study, "endpoint"):
        endpoint = resources.get(fhir_json.ref(ref) or "")
        if endpoint is not None and not _is_wado(endpoint):
            return _address(endpoint)
    return None


def _patient(patient: JSON | None) -> Patient:
    if patient is None:
        return Patient()
    identifiers = [i for i in fhir_json.list_member(patient, "identifier") if isinstance(i, dict)]
    primary = next((i for i in identifiers if i.get("use") == "usual"), None)
    if primary is None:
        # No "usual" identifier: the first one not marked secondary is the Patient ID.
        primary = next((i for i in identifiers if i.get("use") != "secondary"), None)
    others = tuple(
        ident
        for i in identifiers
        if i is not primary and i.get("use") == "secondary" and (ident := _identifier(i))
    )
    sex = {"male": "M", "female": "F", "other": "O"}.get(str(patient.get("gender")))
    return Patient(
        id=_identifier(primary),
        other_ids=others,
        name=_person_name(fhir_json.list_member(patient, "name")),
        birth_date=to_dicom_date(patient.get("birthDate")),
        sex=sex,
    )


def _person_name(names: list[Any]) -> str | None:
    """A DICOM PN (``family^given^middle``) from the first HumanName."""
    for name in names[:1]:
        if not isinstance(name, dict):
            return None
        family = to_text(name.get("family")) or ""
        given = [g for g in fhir_json.list_member(name, "given") if isinstance(g, str)]
        if not family and not given:
            return to_text(name.get("text"))
        return "^".join([family, *given]).rstrip("^")
    return None


def _creator(document: JSON, resources: dict[str, JSON], offset: str | None) -> Creator:
    manufacturer = institution = None
    for resource in fhir_json.resources(document):
        kind = resource.get("resourceType")
        if kind == "Device" and manufacturer is None:
            manufacturer = to_text(resource.get("manufacturer"))
        elif kind == "Organization" and institution is None:
            institution = to_text(resource.get("name"))
    return Creator(manufacturer=manufacturer, institution=institution, timezone_offset=offset)


def _series(item: JSON, path: str, resources: dict[str, JSON], notes: list[Finding]) -> Series:
    date, time, _ = split_fhir_datetime(item.get("started"))
    rluid = url = opaque = None
    for i, ref in enumerate(fhir_json.list_member(item, "endpoint")):
        endpoint = resources.get(fhir_json.ref(ref) or "")
        if endpoint is None or not _is_wado(endpoint):
            continue
        url = _address(endpoint)
        for ext in fhir_json.extension(endpoint, EXT_RETRIEVE_LOCATION_UID):
            raw = to_text(ext.get("valueString") or ext.get("valueOid") or ext.get("valueUri"))
            rluid = to_oid(raw)
            if raw is not None and rluid is None:
                opaque = raw[:64]
                notes.append(
                    Finding(
                        path=f"{path}.endpoint[{i}]→Endpoint.extension[retrieve-location-uid]",
                        rule="1..1 OID",
                        message=f"{raw[:64]!r} is not an OID; treated as absent",
                        severity=Severity.ERROR,
                        section="MADO FHIR IG MadoWadoEndpoint; MADO Rev 1.1 §6.X.2.14",
                    )
                )
        break
    modality = item.get("modality")
    return Series(
        uid=to_uid(item.get("uid"), f"{path}.uid"),
        modality=to_text(modality.get("code")) if isinstance(modality, dict) else None,
        description=to_text(item.get("description")),
        number=to_int(item.get("number")),
        date=date,
        time=time,
        body_site=code_from_coding(item.get("bodySite")),
        retrieve_location_uid=rluid,
        opaque_location=opaque if rluid is None else None,
        retrieve_url=url,
        instances=tuple(
            _instance(inst, f"{path}.instance[{j}]")
            for j, inst in enumerate(fhir_json.dicts(item, "instance"))
        ),
    )


def _instance(item: JSON, path: str) -> Instance:
    sop_class = item.get("sopClass")
    frames = next(
        (to_int(e.get("valueInteger")) for e in fhir_json.extension(item, EXT_NUMBER_OF_FRAMES)),
        None,
    )
    key_object = None
    for ext in fhir_json.extension(item, EXT_KO_DOCUMENT_TITLE):
        codings = fhir_json.list_member(ext.get("valueCodeableConcept"), "coding")
        title = code_from_coding(codings[0]) if codings else None
        if title is not None:
            key_object = KeyObjectSummary(title=title, description=to_text(item.get("title")))
    descriptions = fhir_json.extension(item, EXT_KEY_IMAGE_DESCRIPTION)
    description = next((to_text(e.get("valueString")) for e in descriptions), None)
    return Instance(
        sop_class_uid=to_uid(
            sop_class.get("code") if isinstance(sop_class, dict) else None, f"{path}.sopClass.code"
        ),
        sop_instance_uid=to_uid(item.get("uid"), f"{path}.uid"),
        number=to_int(item.get("number")),
        frames=frames,
        key_object=key_object,
        flagged_by=tuple(
            _flag(ext, f"{path}.extension[key-image-flag][{k}]")
            for k, ext in enumerate(fhir_json.extension(item, EXT_KEY_IMAGE_FLAG))
        ),
        key_description=description,
    )


def _flag(ext: JSON, path: str) -> KeyImageFlag:
    parts = {
        e["url"]: e for e in fhir_json.dicts(ext, "extension") if isinstance(e.get("url"), str)
    }

    def uid(name: str) -> Any:
        part = parts.get(name, {})
        return to_uid(part.get("valueOid") or part.get("valueString"), f"{path}.{name}")

    purpose = code_from_coding(parts.get("purpose", {}).get("valueCoding"))
    return KeyImageFlag(
        series_uid=uid("series"),
        sop_instance_uid=uid("instance"),
        sop_class_uid=uid("sopClass"),
        purpose=purpose or OF_INTEREST,
    )
