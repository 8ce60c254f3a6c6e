"""MADO content requirements of a DICOM KOS manifest, checked attribute by attribute.

Rules from MADO Rev 1.1 §6.X.2.5-6.X.2.14 (Patient, General Study, General Equipment, Key
Object Document, SR Document Content, SOP Common, Referenced Request, Hierarchic Designator,
Hierarchical SOP Instance and Series Reference macros) and, for what Rev 1.1 left to the draft,
the Rev 0.6 §7.3.3 tables: the fixed values of the KO series and SR root, the document title
113030 "Manifest" (Rev 1.1's temporary MADOTEMP001 "Manifest with Description" is accepted),
the series-level Modality (R+) and the key-image extension. Severities: a missing R/R+ value or
a wrong fixed value is an error; RC+ whose condition cannot be decided from the manifest alone,
and requirements the Rev 1.1 text moved elsewhere, are warnings. See docs/manifests.md.

:func:`check_kos` never raises; it only returns findings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from pydicom.dataset import Dataset

from mado.kos_reader import code_of, concept_of
from mado.normalise import to_oid, to_text
from mado.report import Finding, Severity
from mado.vocab import (
    CODE_DOCUMENT_TITLE,
    CODE_IMAGE_LIBRARY,
    CODE_IMAGE_LIBRARY_GROUP,
    CODE_MODALITY,
    CODE_SERIES_INSTANCE_UID,
    CODE_SERIES_RELATED_INSTANCES,
    CODE_STUDY_RELATED_SERIES,
    CODE_TARGET_REGION,
    KOS_SOP_CLASS_UID,
    MANIFEST_TITLES,
)

__all__ = ["check_kos"]

_R11 = "MADO Rev 1.1 "
_R06 = "MADO Rev 0.6 "
_EVIDENCE = "CurrentRequestedProcedureEvidenceSequence"


def _seq(item: Dataset, keyword: str) -> Sequence[Dataset]:
    value: Any = item.get(keyword)
    return value if value is not None else ()


class _Checker:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def add(self, path: str, rule: str, message: str, section: str, severity: Severity) -> None:
        self.findings.append(
            Finding(path=path, rule=rule, message=message, severity=severity, section=section)
        )

    def present(  # noqa: PLR0917 - one positional call shape for every rule table row
        self,
        item: Dataset,
        keyword: str,
        tag: str,
        path: str,
        usage: str,
        section: str,
        severity: Severity = Severity.ERROR,
    ) -> bool:
        """Check a required attribute has a value; True when it does."""
        where = f"{path}{'.' if path else ''}{keyword} {tag}"
        if keyword not in item:
            self.add(where, usage, "attribute is missing", section, severity)
            return False
        value = item.get(keyword)
        if value is None or value == "" or (isinstance(value, Sequence) and len(value) == 0):
            self.add(where, usage, "attribute is present but empty", section, severity)
            return False
        return True

    def single_item(self, item: Dataset, keyword: str, tag: str, path: str, section: str) -> None:
        items = _seq(item, keyword)
        if len(items) > 1:
            where = f"{path}{'.' if path else ''}{keyword} {tag}"
            self.add(
                where,
                "VM",
                f"{len(items)} items; only a single item is allowed",
                section,
                Severity.ERROR,
            )

    def fixed(  # noqa: PLR0917 - one positional call shape for every rule table row
        self, item: Dataset, keyword: str, tag: str, path: str, expected: str, section: str
    ) -> None:
        value = to_text(item.get(keyword))
        if value is not None and value != expected:
            where = f"{path}{'.' if path else ''}{keyword} {tag}"
            self.add(
                where,
                "fixed value",
                f"is {value!r}, shall be {expected!r}",
                section,
                Severity.ERROR,
            )

    def issuer(  # noqa: PLR0917 - one positional call shape for every rule table row
        self, item: Dataset, keyword: str, tag: str, path: str, usage: str, section: str
    ) -> None:
        """An Issuer … Sequence: present, one item, Universal Entity ID and its type (§6.X.2.12)."""
        if not self.present(item, keyword, tag, path, usage, section):
            return
        self.single_item(item, keyword, tag, path, section)
        inner = f"{path}{'.' if path else ''}{keyword}[0]"
        qualifier = _seq(item, keyword)[0]
        self.present(qualifier, "UniversalEntityID", "(0040,0032)", inner, "R+", _R11 + "§6.X.2.12")
        self.present(
            qualifier, "UniversalEntityIDType", "(0040,0033)", inner, "RC+", _R11 + "§6.X.2.12"
        )


def check_kos(ds: Dataset) -> tuple[Finding, ...]:
    """Every MADO content-requirement finding for the KOS manifest ``ds``."""
    check = _Checker()
    _sop_common(check, ds)
    _patient(check, ds)
    _study(check, ds)
    _requests(check, ds)
    _evidence(check, ds)
    _sr_root(check, ds)
    _image_library(check, ds)
    return tuple(check.findings)


def _sop_common(check: _Checker, ds: Dataset) -> None:
    check.fixed(ds, "SOPClassUID", "(0008,0016)", "", KOS_SOP_CLASS_UID, _R11 + "§6.X.2.2")
    check.present(ds, "TimezoneOffsetFromUTC", "(0008,0201)", "", "R+", _R11 + "§6.X.2.10")
    check.present(
        ds,
        "SpecificCharacterSet",
        "(0008,0005)",
        "",
        "R+",
        _R06 + "Table 7.3.3.7.2-1",
        Severity.WARNING,
    )
    check.present(ds, "Manufacturer", "(0008,0070)", "", "R+", _R11 + "§6.X.2.7")
    check.present(ds, "InstitutionName", "(0008,0080)", "", "R+", _R11 + "§6.X.2.7")
    check.fixed(ds, "Modality", "(0008,0060)", "", "KO", _R06 + "Table 7.3.3.3.2-1")


def _patient(check: _Checker, ds: Dataset) -> None:
    section = _R11 + "§6.X.2.5"
    check.present(ds, "PatientID", "(0010,0020)", "", "R+", section)
    check.issuer(ds, "IssuerOfPatientIDQualifiersSequence", "(0010,0024)", "", "R+", section)
    if not check.present(ds, "OtherPatientIDsSequence", "(0010,1002)", "", "R+", section):
        return
    ids = []
    for i, item in enumerate(_seq(ds, "OtherPatientIDsSequence")):
        path = f"OtherPatientIDsSequence[{i}]"
        check.present(item, "PatientID", "(0010,0020)", path, "R+", section)
        check.issuer(
            item, "IssuerOfPatientIDQualifiersSequence", "(0010,0024)", path, "R+", section
        )
        check.fixed(
            item, "TypeOfPatientID", "(0010,0022)", path, "TEXT", _R06 + "Table 7.3.3.1.2-1"
        )
        ids.append(to_text(item.get("PatientID")))
    patient_id = to_text(ds.get("PatientID"))
    if patient_id is not None and patient_id not in ids:
        check.add(
            "OtherPatientIDsSequence (0010,1002)",
            "content",
            f"does not contain the Patient ID {patient_id!r}",
            section + ".1.1.2",
            Severity.ERROR,
        )


def _study(check: _Checker, ds: Dataset) -> None:
    section = _R11 + "§6.X.2.6"
    check.present(ds, "StudyInstanceUID", "(0020,000D)", "", "R", _R11 + "§6.X.2.2")
    check.present(ds, "StudyDate", "(0008,0020)", "", "R+", section)
    check.present(ds, "StudyTime", "(0008,0030)", "", "R+", section)
    if to_text(ds.get("AccessionNumber")) is not None:
        check.issuer(ds, "IssuerOfAccessionNumberSequence", "(0008,0051)", "", "RC+", section)
    accessions = {
        a
        for item in _seq(ds, "ReferencedRequestSequence")
        if (a := to_text(item.get("AccessionNumber")))
    }
    if len(accessions) > 1 and to_text(ds.get("AccessionNumber")) is not None:
        check.add(
            "AccessionNumber (0008,0050)",
            "O+",
            f"shall be empty when the study has {len(accessions)} accession numbers "
            "(they belong in the Referenced Request Sequence)",
            section + ".1",
            Severity.ERROR,
        )


def _requests(check: _Checker, ds: Dataset) -> None:
    section = _R11 + "§6.X.2.11"
    if not check.present(
        ds, "ReferencedRequestSequence", "(0040,A370)", "", "R+", _R11 + "§6.X.2.8"
    ):
        return
    study = to_text(ds.get("StudyInstanceUID"))
    for i, item in enumerate(_seq(ds, "ReferencedRequestSequence")):
        path = f"ReferencedRequestSequence[{i}]"
        has_study = check.present(item, "StudyInstanceUID", "(0020,000D)", path, "R+", section)
        if has_study and study is not None and to_text(item.get("StudyInstanceUID")) != study:
            check.add(
                f"{path}.StudyInstanceUID (0020,000D)",
                "content",
                "differs from the manifest's Study Instance UID",
                section,
                Severity.ERROR,
            )
        check.present(item, "AccessionNumber", "(0008,0050)", path, "R+", section)
        check.issuer(item, "IssuerOfAccessionNumberSequence", "(0008,0051)", path, "R+", section)
        placer = check.present(
            item, "PlacerOrderNumberImagingServiceRequest", "(0040,2016)", path, "R+", section
        )
        if placer:
            check.issuer(item, "OrderPlacerIdentifierSequence", "(0040,0026)", path, "RC+", section)


def _evidence(check: _Checker, ds: Dataset) -> None:
    section = _R11 + "§6.X.2.13"
    if not check.present(ds, _EVIDENCE, "(0040,A375)", "", "R", _R11 + "§6.X.2.8"):
        return
    items = _seq(ds, _EVIDENCE)
    studies = {to_text(item.get("StudyInstanceUID")) for item in items}
    if len(studies) > 1:
        check.add(
            f"{_EVIDENCE} (0040,A375)",
            "one study",
            f"references {len(studies)} studies; a manifest references exactly one",
            section,
            Severity.ERROR,
        )
    top = to_text(ds.get("StudyInstanceUID"))
    library_modalities = _library_series_modalities(ds)
    for i, item in enumerate(items):
        path = f"{_EVIDENCE}[{i}]"
        has_study = check.present(item, "StudyInstanceUID", "(0020,000D)", path, "R", section)
        if has_study and top and to_text(item.get("StudyInstanceUID")) != top:
            check.add(
                f"{path}.StudyInstanceUID (0020,000D)",
                "content",
                f"differs from the manifest's Study Instance UID {top}",
                _R11 + "§6.X.2.2",
                Severity.ERROR,
            )
        if not check.present(item, "ReferencedSeriesSequence", "(0008,1115)", path, "R", section):
            continue
        for j, series in enumerate(_seq(item, "ReferencedSeriesSequence")):
            _series(check, series, f"{path}.ReferencedSeriesSequence[{j}]", library_modalities)


def _series(
    check: _Checker, series: Dataset, path: str, library_modalities: dict[str, str]
) -> None:
    section = _R11 + "§6.X.2.14"
    check.present(series, "SeriesInstanceUID", "(0020,000E)", path, "R", section)
    if check.present(series, "RetrieveLocationUID", "(0040,E011)", path, "R+", section):
        raw = to_text(series.get("RetrieveLocationUID"))
        if to_oid(raw) is None:
            check.add(
                f"{path}.RetrieveLocationUID (0040,E011)",
                "R+ OID",
                f"{raw!r} is not an OID",
                section,
                Severity.ERROR,
            )
    url = to_text(series.get("RetrieveURL"))
    if url is not None and not url.lower().startswith(("http://", "https://")):
        check.add(
            f"{path}.RetrieveURL (0008,1190)",
            "O base URI",
            f"{url[:80]!r} is not an absolute http(s) base URI",
            section,
            Severity.WARNING,
        )
    if "Modality" not in series or not to_text(series.get("Modality")):
        uid = to_text(series.get("SeriesInstanceUID")) or ""
        if uid in library_modalities:
            check.add(
                f"{path}.Modality (0008,0060)",
                "R+",
                f"attribute is missing; the TID 1602 Image Library Group gives "
                f"{library_modalities[uid]!r}, which Rev 1.1 reads instead",
                _R06 + "Table 7.3.3.5.2-1",
                Severity.WARNING,
            )
        else:
            check.add(
                f"{path}.Modality (0008,0060)",
                "R+",
                "attribute is missing and no TID 1602 Image Library Group gives the modality",
                _R06 + "Table 7.3.3.5.2-1",
                Severity.ERROR,
            )
    if not check.present(series, "ReferencedSOPSequence", "(0008,1199)", path, "R", section):
        return
    for k, ref in enumerate(_seq(series, "ReferencedSOPSequence")):
        where = f"{path}.ReferencedSOPSequence[{k}]"
        check.present(ref, "ReferencedSOPClassUID", "(0008,1150)", where, "R", section)
        check.present(ref, "ReferencedSOPInstanceUID", "(0008,1155)", where, "R", section)
        _key_image_extension(check, ref, where)


def _key_image_extension(check: _Checker, ref: Dataset, path: str) -> None:
    section = _R06 + "Table 7.3.3.5.2-1"
    for r, related in enumerate(_seq(ref, "RelatedSeriesSequence")):
        where = f"{path}.RelatedSeriesSequence[{r}]"
        check.present(related, "SeriesInstanceUID", "(0020,000E)", where, "1", section)
        if not check.present(related, "ReferencedSOPSequence", "(0008,1199)", where, "1", section):
            continue
        for s, kos in enumerate(_seq(related, "ReferencedSOPSequence")):
            inner = f"{where}.ReferencedSOPSequence[{s}]"
            check.present(kos, "ReferencedSOPInstanceUID", "(0008,1155)", inner, "1", section)
            check.fixed(
                kos, "ReferencedSOPClassUID", "(0008,1150)", inner, KOS_SOP_CLASS_UID, section
            )
            if check.present(
                kos, "PurposeOfReferenceCodeSequence", "(0040,A170)", inner, "R+", section
            ):
                purpose = code_of(kos, "PurposeOfReferenceCodeSequence")
                if purpose is not None and purpose.scheme != "DCM":
                    check.add(
                        f"{inner}.PurposeOfReferenceCodeSequence[0]"
                        ".CodingSchemeDesignator (0008,0102)",
                        "fixed value",
                        f"is {purpose.scheme!r}, shall be 'DCM'",
                        section,
                        Severity.ERROR,
                    )
    texts = _seq(ref, "ContentSequence")
    if len(texts) > 1:
        check.add(
            f"{path}.ContentSequence (0040,A730)",
            "VM",
            "zero or one item allowed",
            section,
            Severity.ERROR,
        )
    for t, text in enumerate(texts[:1]):
        check.present(
            text, "TextValue", "(0040,A160)", f"{path}.ContentSequence[{t}]", "R+", section
        )


def _sr_root(check: _Checker, ds: Dataset) -> None:
    section = _R06 + "Table 7.3.3.6.2-1"
    check.fixed(ds, "ValueType", "(0040,A040)", "", "CONTAINER", section)
    check.fixed(ds, "ContinuityOfContent", "(0040,A050)", "", "SEPARATE", section)
    if check.present(ds, "ConceptNameCodeSequence", "(0040,A043)", "", "R+", section):
        title = code_of(ds, "ConceptNameCodeSequence")
        if title is None or not any(title.same_concept(t) for t in MANIFEST_TITLES):
            shown = f"({title.value}, {title.scheme}, {title.meaning!r})" if title else "no code"
            check.add(
                "ConceptNameCodeSequence[0] (0040,A043)",
                "fixed value",
                f"document title is {shown}; a manifest has (113030, DCM, 'Manifest') or, "
                "in Rev 1.1, (MADOTEMP001, 99IHE, 'Manifest with Description')",
                section + "; " + _R11 + "§6.X.2.9",
                Severity.ERROR,
            )
    templates = _seq(ds, "ContentTemplateSequence")
    for t in templates[:1]:
        check.fixed(
            t, "MappingResource", "(0008,0105)", "ContentTemplateSequence[0]", "DCMR", section
        )
        check.fixed(
            t, "TemplateIdentifier", "(0040,DB00)", "ContentTemplateSequence[0]", "2010", section
        )
    check.present(ds, "ContentSequence", "(0040,A730)", "", "R+", section)


def _library_items(ds: Dataset) -> Iterator[tuple[int, Dataset]]:
    for i, item in enumerate(_seq(ds, "ContentSequence")):
        concept = concept_of(item)
        if concept is not None and concept.same_concept(CODE_IMAGE_LIBRARY):
            yield i, item


def _library_series_modalities(ds: Dataset) -> dict[str, str]:
    found: dict[str, str] = {}
    for _, library in _library_items(ds):
        for group in _seq(library, "ContentSequence"):
            uid = modality = None
            for item in _seq(group, "ContentSequence"):
                concept = concept_of(item)
                if concept is None:
                    continue
                if concept.same_concept(CODE_SERIES_INSTANCE_UID):
                    uid = to_text(item.get("UID"))
                elif concept.same_concept(CODE_MODALITY):
                    code = code_of(item, "ConceptCodeSequence")
                    modality = code.value if code else None
            if uid and modality:
                found[uid] = modality
    return found


def _concepts(items: Sequence[Dataset]) -> list[Any]:
    return [c for item in items if (c := concept_of(item)) is not None]


def _image_library(check: _Checker, ds: Dataset) -> None:
    section = _R11 + "§6.X.2.9"
    libraries = list(_library_items(ds))
    if not libraries:
        check.add(
            "ContentSequence (0040,A730)",
            "R",
            "no TID 1600 Image Library container (111028, DCM)",
            section,
            Severity.ERROR,
        )
        return
    index, library = libraries[0]
    path = f"ContentSequence[{index}]"
    if to_text(library.get("ContinuityOfContent")) is None:
        check.add(
            f"{path}.ContinuityOfContent (0040,A050)",
            "1",
            "attribute is missing",
            "DICOM PS3.3 C.17.3",
            Severity.ERROR,
        )
    children = _seq(library, "ContentSequence")
    concepts = _concepts(children)
    for concept, label in (
        (CODE_MODALITY, "Modality"),
        (CODE_TARGET_REGION, "Target Region"),
        (CODE_STUDY_RELATED_SERIES, "Number of Study Related Series"),
    ):
        if not any(c.same_concept(concept) for c in concepts):
            check.add(
                f"{path}.ContentSequence",
                "R+",
                f"no ({concept.value}, {concept.scheme}, {label!r}) item",
                section + " Table 6.X.2.9-1",
                Severity.ERROR,
            )
    groups = [
        (g, item)
        for g, item in enumerate(children)
        if (c := concept_of(item)) is not None and c.same_concept(CODE_IMAGE_LIBRARY_GROUP)
    ]
    series_count = sum(len(_seq(e, "ReferencedSeriesSequence")) for e in _seq(ds, _EVIDENCE))
    if len(groups) != series_count:
        check.add(
            f"{path}.ContentSequence",
            "R+",
            f"{len(groups)} Image Library Group(s) for {series_count} referenced series; "
            "each shared series shall have one",
            section,
            Severity.ERROR,
        )
    for g, group in groups:
        where = f"{path}.ContentSequence[{g}]"
        group_items = _seq(group, "ContentSequence")
        group_concepts = _concepts(group_items)
        for concept, label in (
            (CODE_MODALITY, "Modality"),
            (CODE_SERIES_INSTANCE_UID, "Series Instance UID"),
            (CODE_SERIES_RELATED_INSTANCES, "Number of Series Related Instances"),
        ):
            if not any(c.same_concept(concept) for c in group_concepts):
                check.add(
                    f"{where}.ContentSequence",
                    "R+",
                    f"no ({concept.value}, {concept.scheme}, {label!r}) item",
                    section + " Table 6.X.2.9-2",
                    Severity.ERROR,
                )
        _kos_entries(check, group_items, where)


def _kos_entries(check: _Checker, items: Sequence[Dataset], path: str) -> None:
    """A KOS/KIN entry needs its Document Title (TID 16XX, R+)."""
    pending: list[Dataset] = []
    for e, item in enumerate(items):
        refs = _seq(item, "ReferencedSOPSequence")
        if not refs:
            pending.append(item)
            continue
        descriptors = [*pending, *_seq(item, "ContentSequence")]
        pending = []
        if to_text(refs[0].get("ReferencedSOPClassUID")) != KOS_SOP_CLASS_UID:
            continue
        if not any(c.same_concept(CODE_DOCUMENT_TITLE) for c in _concepts(descriptors)):
            check.add(
                f"{path}.ContentSequence[{e}]",
                "R+",
                "KOS/KIN entry without (121144, DCM, 'Document Title')",
                _R11 + "§6.X.2.9 Table 6.X.2.9-4",
                Severity.ERROR,
            )
