"""Validation findings and the report that collects them.

A :class:`Finding` names the attribute (a DICOM path such as
``CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[1].Modality (0008,0060)``
or a FHIR path such as ``ImagingStudy.series[1].modality``), the rule it breaks (the IHE usage
``R``, ``R+``, ``RC+``, a fixed value, …), its severity, and the section of MADO the rule comes
from. Readers add findings for what they had to normalise; :mod:`mado.validate` adds the
content-requirement checks.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Finding", "Report", "Severity"]


class Severity(enum.Enum):
    """How bad a finding is: only ``ERROR`` makes a manifest non-conformant."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One problem (or note) about one attribute of a manifest."""

    path: str
    rule: str
    message: str
    severity: Severity
    section: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form used by ``manifest validate --format json``."""
        return {
            "severity": self.severity.value,
            "path": self.path,
            "rule": self.rule,
            "message": self.message,
            "section": self.section,
        }

    def __str__(self) -> str:
        return (
            f"{self.severity.value.upper():7} {self.path}: {self.message} "
            f"[{self.rule}; {self.section}]"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """All findings about one manifest file, in the order they were found."""

    source: str
    format: str
    findings: tuple[Finding, ...]

    @classmethod
    def of(cls, source: str, format: str, findings: Iterable[Finding]) -> Report:
        return cls(source=source, format=format, findings=tuple(findings))

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not self.errors

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "format": self.format,
            "conformant": self.ok,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [f.as_dict() for f in self.findings],
        }

    def as_text(self) -> str:
        verdict = "conformant" if self.ok else "NOT conformant"
        head = (
            f"{self.source} ({self.format}): {verdict}, {len(self.errors)} error(s), "
            f"{len(self.warnings)} warning(s)"
        )
        return "\n".join([head, *(f"  {f}" for f in self.findings)])
