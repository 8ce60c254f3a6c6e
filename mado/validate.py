"""The validation report of a manifest: MADO content requirements, format-specific and common.

:func:`validate_bytes` parses the document, runs the format's attribute checks
(:mod:`mado.validate_kos` or :mod:`mado.validate_fhir`), reads it into the model (adding the
findings normalisation produced), and runs the checks that hold for both formats:

* every key-image flag names a KOS/KIN the manifest lists, with the KOS SOP class
  (Rev 0.6 Appendix A: the flag lets a consumer skip fetching the KO series);
* the general-study Accession Number matches the Referenced Request items (§6.X.2.6.1).

A manifest the model cannot hold (invalid UID, second study) is one error finding, not an
exception. Raises only :class:`~mado.errors.UnreadableManifest`,
:class:`~mado.errors.ManifestTooComplex` and :class:`~mado.errors.NotAManifest`, for
documents that are not manifests at all or that exceed the parsing limits.
"""

from __future__ import annotations

from mado.errors import InvalidManifest
from mado.guard import DEFAULT_LIMITS, ParseLimits
from mado.load import Parsed, parse_bytes, read_parsed
from mado.model import Manifest
from mado.report import Finding, Report, Severity
from mado.validate_fhir import check_fhir
from mado.validate_kos import check_kos
from mado.vocab import KOS_SOP_CLASS_UID

__all__ = ["check_manifest", "validate_bytes", "validate_parsed"]


def validate_bytes(
    data: bytes, source: str = "<bytes>", limits: ParseLimits = DEFAULT_LIMITS
) -> Report:
    """The full report for the manifest document ``data``, parsed within ``limits``."""
    return validate_parsed(parse_bytes(data, source, limits))


def validate_parsed(parsed: Parsed) -> Report:
    """The full report for an already parsed manifest document."""
    if parsed.dataset is not None:
        if str(parsed.dataset.get("SOPClassUID", "")) != KOS_SOP_CLASS_UID:
            read_parsed(parsed)  # raises NotAManifest, naming the SOP class found
        findings = list(check_kos(parsed.dataset))
    else:
        findings = list(check_fhir(parsed.document))
    try:
        reading = read_parsed(parsed)
    except InvalidManifest as exc:
        findings.append(
            Finding(
                path=exc.path,
                rule="readable",
                message=exc.reason,
                severity=Severity.ERROR,
                section="MADO Rev 1.1 §6.X.2.13",
            )
        )
        return Report.of(parsed.source, parsed.format, _unique(findings))
    findings += reading.findings
    findings += check_manifest(reading.manifest)
    return Report.of(parsed.source, parsed.format, _unique(findings))


def check_manifest(manifest: Manifest) -> tuple[Finding, ...]:
    """Checks that hold whatever the format; see the module docstring."""
    out: list[Finding] = []
    listed = {i.sop_instance_uid for _, i in manifest.instances()}
    for series, instance in manifest.instances():
        for flag in instance.flagged_by:
            if flag.sop_instance_uid not in listed:
                out.append(
                    Finding(
                        path=f"series {series.uid} instance {instance.sop_instance_uid}",
                        rule="key-image reference",
                        message=f"flagged by KOS {flag.sop_instance_uid}, "
                        "which the manifest does not list",
                        severity=Severity.WARNING,
                        section="MADO Rev 0.6 Table 7.3.3.5.2-1",
                    )
                )
            if flag.sop_class_uid != KOS_SOP_CLASS_UID:
                out.append(
                    Finding(
                        path=f"series {series.uid} instance {instance.sop_instance_uid}",
                        rule="fixed value",
                        message=f"key-image flag SOP class is {flag.sop_class_uid}, "
                        "shall be the KOS SOP class",
                        severity=Severity.ERROR,
                        section="MADO Rev 0.6 Table 7.3.3.5.2-1",
                    )
                )
    study = manifest.study
    accessions = {r.accession.value for r in study.requests if r.accession}
    if study.accession and accessions and study.accession.value not in accessions:
        out.append(
            Finding(
                path="study accession number",
                rule="consistency",
                message=f"{study.accession.value!r} is not among the requested procedures' "
                f"accession numbers {sorted(accessions)}",
                severity=Severity.WARNING,
                section="MADO Rev 1.1 §6.X.2.6.1",
            )
        )
    return tuple(out)


def _unique(findings: list[Finding]) -> list[Finding]:
    # The format checks and the readers can both notice a non-OID Retrieve Location UID.
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        key = (finding.path, finding.message)
        if key not in seen:
            seen.add(key)
            unique.append(finding)
    return unique
