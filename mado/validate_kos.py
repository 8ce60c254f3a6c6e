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

from pydicom.dataset import Dataset

from mado.checks import EVIDENCE, R06, R11, Checker
from mado.kos_library import code_of
from mado.normalise import items_of, to_oid, to_text
from mado.report import Finding, Severity
from mado.validate_sr import check_content_tree, library_series_modalities
from mado.vocab import (
    KOS_SOP_CLASS_UID,
)

__all__ = ["check_kos"]


def check_kos(ds: Dataset) -> tuple[Finding, ...]:
    """Every MADO content-requirement finding for the KOS manifest ``ds``."""
    check = Checker()
    _sop_common(check, ds)
    _patient(check, ds)
    _study(check, ds)
    _requests(check, ds)
    _evidence(check, ds)
    check_content_tree(check, ds)
    return tuple(check.findings)


def _sop_common(check: Checker, ds: Dataset) -> None:
    check.fixed(ds, "SOPClassUID", "(0008,0016)", "", KOS_SOP_CLASS_UID, R11 + "§6.X.2.2")
    check.present(ds, "TimezoneOffsetFromUTC", "(0008,0201)", "", "R+", R11 + "§6.X.2.10")
    check.present(
        ds,
        "SpecificCharacterSet",
        "(0008,0005)",
        "",
        "R+",
        R06 + "Table 7.3.3.7.2-1",
        Severity.WARNING,
    )
    check.present(ds, "Manufacturer", "(0008,0070)", "", "R+", R11 + "§6.X.2.7")
    check.present(ds, "InstitutionName", "(0008,0080)", "", "R+", R11 + "§6.X.2.7")
    check.fixed(ds, "Modality", "(0008,0060)", "", "KO", R06 + "Table 7.3.3.3.2-1")


def _patient(check: Checker, ds: Dataset) -> None:
    section = R11 + "§6.X.2.5"
    check.present(ds, "PatientID", "(0010,0020)", "", "R+", section)
    check.issuer(ds, "IssuerOfPatientIDQualifiersSequence", "(0010,0024)", "", "R+", section)
    if not check.present(ds, "OtherPatientIDsSequence", "(0010,1002)", "", "R+", section):
        return
    ids = []
    for i, item in enumerate(items_of(ds, "OtherPatientIDsSequence")):
        path = f"OtherPatientIDsSequence[{i}]"
        check.present(item, "PatientID", "(0010,0020)", path, "R+", section)
        check.issuer(
            item, "IssuerOfPatientIDQualifiersSequence", "(0010,0024)", path, "R+", section
        )
        check.fixed(item, "TypeOfPatientID", "(0010,0022)", path, "TEXT", R06 + "Table 7.3.3.1.2-1")
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


def _study(check: Checker, ds: Dataset) -> None:
    section = R11 + "§6.X.2.6"
    check.present(ds, "StudyInstanceUID", "(0020,000D)", "", "R", R11 + "§6.X.2.2")
    check.present(ds, "StudyDate", "(0008,0020)", "", "R+", section)
    check.present(ds, "StudyTime", "(0008,0030)", "", "R+", section)
    if to_text(ds.get("AccessionNumber")) is not None:
        check.issuer(ds, "IssuerOfAccessionNumberSequence", "(0008,0051)", "", "RC+", section)
    accessions = {
        a
        for item in items_of(ds, "ReferencedRequestSequence")
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


def _requests(check: Checker, ds: Dataset) -> None:
    section = R11 + "§6.X.2.11"
    if not check.present(
        ds, "ReferencedRequestSequence", "(0040,A370)", "", "R+", R11 + "§6.X.2.8"
    ):
        return
    study = to_text(ds.get("StudyInstanceUID"))
    for i, item in enumerate(items_of(ds, "ReferencedRequestSequence")):
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


def _evidence(check: Checker, ds: Dataset) -> None:
    section = R11 + "§6.X.2.13"
    if not check.present(ds, EVIDENCE, "(0040,A375)", "", "R", R11 + "§6.X.2.8"):
        return
    items = items_of(ds, EVIDENCE)
    studies = {to_text(item.get("StudyInstanceUID")) for item in items}
    if len(studies) > 1:
        check.add(
            f"{EVIDENCE} (0040,A375)",
            "one study",
            f"references {len(studies)} studies; a manifest references exactly one",
            section,
            Severity.ERROR,
        )
    top = to_text(ds.get("StudyInstanceUID"))
    library_modalities = library_series_modalities(ds)
    for i, item in enumerate(items):
        path = f"{EVIDENCE}[{i}]"
        has_study = check.present(item, "StudyInstanceUID", "(0020,000D)", path, "R", section)
        if has_study and top and to_text(item.get("StudyInstanceUID")) != top:
            check.add(
                f"{path}.StudyInstanceUID (0020,000D)",
                "content",
                f"differs from the manifest's Study Instance UID {top}",
                R11 + "§6.X.2.2",
                Severity.ERROR,
            )
        if not check.present(item, "ReferencedSeriesSequence", "(0008,1115)", path, "R", section):
            continue
        for j, series in enumerate(items_of(item, "ReferencedSeriesSequence")):
            _series(check, series, f"{path}.ReferencedSeriesSequence[{j}]", library_modalities)


def _series(check: Checker, series: Dataset, path: str, library_modalities: dict[str, str]) -> None:
    section = R11 + "§6.X.2.14"
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
                R06 + "Table 7.3.3.5.2-1",
                Severity.WARNING,
            )
        else:
            check.add(
                f"{path}.Modality (0008,0060)",
                "R+",
                "attribute is missing and no TID 1602 Image Library Group gives the modality",
                R06 + "Table 7.3.3.5.2-1",
                Severity.ERROR,
            )
    if not check.present(series, "ReferencedSOPSequence", "(0008,1199)", path, "R", section):
        return
    for k, ref in enumerate(items_of(series, "ReferencedSOPSequence")):
        where = f"{path}.ReferencedSOPSequence[{k}]"
        check.present(ref, "ReferencedSOPClassUID", "(0008,1150)", where, "R", section)
        check.present(ref, "ReferencedSOPInstanceUID", "(0008,1155)", where, "R", section)
        _key_image_extension(check, ref, where)


def _key_image_extension(check: Checker, ref: Dataset, path: str) -> None:
    section = R06 + "Table 7.3.3.5.2-1"
    for r, related in enumerate(items_of(ref, "RelatedSeriesSequence")):
        where = f"{path}.RelatedSeriesSequence[{r}]"
        check.present(related, "SeriesInstanceUID", "(0020,000E)", where, "1", section)
        if not check.present(related, "ReferencedSOPSequence", "(0008,1199)", where, "1", section):
            continue
        for s, kos in enumerate(items_of(related, "ReferencedSOPSequence")):
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
    texts = items_of(ref, "ContentSequence")
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
