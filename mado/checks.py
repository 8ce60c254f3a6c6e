"""The finding collector and small helpers every MADO KOS rule table uses.

A :class:`Checker` gathers :class:`~mado.report.Finding` values; its methods are the shapes the
rules take — an attribute that must be present, a sequence with one item, a fixed value, an
Issuer sequence — so each rule is one call naming the attribute, its tag, where it sits, its
usage (R, R+, RC+) and the section of MADO or DICOM that asks for it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from mado.normalise import items_of, to_text
from mado.report import Finding, Severity

__all__ = ["EVIDENCE", "R06", "R11", "Checker"]

R11 = "MADO Rev 1.1 "
R06 = "MADO Rev 0.6 "
EVIDENCE = "CurrentRequestedProcedureEvidenceSequence"


class Checker:
    """Collects findings; never raises."""

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
        items = items_of(item, keyword)
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
        qualifier = items_of(item, keyword)[0]
        self.present(qualifier, "UniversalEntityID", "(0040,0032)", inner, "R+", R11 + "§6.X.2.12")
        self.present(
            qualifier, "UniversalEntityIDType", "(0040,0033)", inner, "RC+", R11 + "§6.X.2.12"
        )
