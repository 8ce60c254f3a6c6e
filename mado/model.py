"""The one manifest model both MADO formats are read into and written from.

A :class:`Manifest` describes exactly one imaging study (MADO Rev 1.1 §6.X.2.13: one manifest,
one study): its patient, the study, each series with the place its instances can be retrieved
from (Retrieve Location UID and Retrieve URL, §6.X.2.14), each instance, and the key-image
information: which Key Object Selection (KOS/KIN) documents exist in the study, with their
title and description (TID 16XX, §6.X.2.9), and which images they flag (the Related Series
Sequence extension of the Rev 0.6 draft, Table 7.3.3.5.2-1, and its Appendix A).

Values are normalised once, by the readers: UIDs are :class:`routing.ids.Uid`, Retrieve
Location UIDs :class:`routing.ids.Oid` (no ``urn:oid:`` or ``oid:`` prefix) — a location
identifier that is not an OID (``ACME`` in the IG sample) is kept as written in
``opaque_location``, so a consumer can map it or name it —, an absent or
placeholder Retrieve URL is ``None``, dates are DICOM ``YYYYMMDD``, times ``HHMMSS[.f…]``
padded to whole seconds, timezone offsets ``±HHMM``. Everything optional in MADO is optional
here; what the manifest lacks is reported by :mod:`mado.validate`, not invented.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from routing.ids import Oid, Uid

__all__ = [
    "Code",
    "Creator",
    "Identifier",
    "Instance",
    "KeyImageFlag",
    "KeyObjectSummary",
    "Manifest",
    "Patient",
    "RequestedProcedure",
    "Series",
    "Study",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    """A coded entry (Code Value, Coding Scheme Designator, Code Meaning)."""

    value: str
    scheme: str
    meaning: str

    def same_concept(self, other: Code) -> bool:
        """True when value and scheme match; the meaning is display text only."""
        return self.value == other.value and self.scheme == other.scheme


@dataclass(frozen=True, slots=True, kw_only=True)
class Identifier:
    """A business identifier and who assigned it (Issuer of … Macro, HL7v2 Hierarchic Designator).

    ``authority`` is the Universal Entity ID, ``authority_type`` its type (``ISO`` for an OID);
    ``issuer`` the local label (Issuer of Patient ID (0010,0021)).
    """

    value: str
    authority: str | None = None
    authority_type: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Patient:
    """Patient module content (MADO §6.X.2.5)."""

    id: Identifier | None = None
    other_ids: tuple[Identifier, ...] = ()
    name: str | None = None
    birth_date: str | None = None
    sex: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestedProcedure:
    """One item of the Referenced Request Sequence (MADO §6.X.2.11): accession and placer order."""

    accession: Identifier | None = None
    placer_order: Identifier | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyObjectSummary:
    """What the manifest says about a KOS/KIN instance it lists (TID 16XX, MADO §6.X.2.9)."""

    title: Code
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyImageFlag:
    """An image flagged by a KOS/KIN: a Related Series Sequence item (Rev 0.6 Table 7.3.3.5.2-1)."""

    series_uid: Uid
    sop_instance_uid: Uid
    sop_class_uid: Uid
    purpose: Code


@dataclass(frozen=True, slots=True, kw_only=True)
class Instance:
    """A referenced SOP instance; ``key_object`` is set when the instance is itself a KOS/KIN."""

    sop_class_uid: Uid
    sop_instance_uid: Uid
    number: int | None = None
    frames: int | None = None
    key_object: KeyObjectSummary | None = None
    flagged_by: tuple[KeyImageFlag, ...] = ()
    key_description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """A referenced series and where to retrieve it from (MADO §6.X.2.14, TID 1602)."""

    uid: Uid
    modality: str | None = None
    description: str | None = None
    number: int | None = None
    date: str | None = None
    time: str | None = None
    body_site: Code | None = None
    retrieve_location_uid: Oid | None = None
    opaque_location: str | None = None  # the identifier as written, when it is not an OID
    retrieve_url: str | None = None
    instances: tuple[Instance, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Study:
    """The one study of the manifest (General Study module, MADO §6.X.2.6)."""

    uid: Uid
    date: str | None = None
    time: str | None = None
    description: str | None = None
    accession: Identifier | None = None
    requests: tuple[RequestedProcedure, ...] = ()
    target_regions: tuple[Code, ...] = ()
    viewer_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Creator:
    """Who made the manifest (General Equipment, MADO §6.X.2.7) and its own timezone (§6.X.2.10)."""

    manufacturer: str | None = None
    institution: str | None = None
    timezone_offset: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """One MADO imaging study manifest, whatever format it came from."""

    patient: Patient
    study: Study
    series: tuple[Series, ...]
    creator: Creator = field(default_factory=Creator)
    title: Code | None = None
    sop_instance_uid: Uid | None = None

    def instances(self) -> Iterator[tuple[Series, Instance]]:
        """Every (series, instance) pair in manifest order."""
        for series in self.series:
            for instance in series.instances:
                yield series, instance

    @property
    def modalities(self) -> tuple[str, ...]:
        """Distinct series modalities in first-seen order (the study-level Modalities)."""
        seen: dict[str, None] = {}
        for series in self.series:
            if series.modality:
                seen.setdefault(series.modality, None)
        return tuple(seen)

    @property
    def has_key_image_flags(self) -> bool:
        """True when at least one image carries the key-image extension."""
        return any(instance.flagged_by for _, instance in self.instances())

    @property
    def key_objects(self) -> tuple[tuple[Series, Instance], ...]:
        """The KOS/KIN instances the manifest lists (those with a TID 16XX summary)."""
        return tuple(pair for pair in self.instances() if pair[1].key_object is not None)
