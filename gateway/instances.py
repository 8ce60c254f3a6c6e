"""Who and what the relayed instances were about, aggregated as they stream, in bounded memory.

A relay learns one :class:`InstanceSeen` per DICOM part (:mod:`gateway.relay.partscan`) and hands
it to :meth:`InstanceTally.note`, which keeps exactly what the audit trail needs and drops
the identity (design.md §4, §6):

    (Patient ID, Issuer) → patient's name, Study UID → Series UID → SOP Class UID → instances

The counts are of distinct SOP Instance UIDs, as PS3.15 A.5.3's ``NumberOfInstances`` means
them: a part repeated under the same patient, study and SOP class counts once. Repeats are
recognised by a 64-bit fingerprint of (patient, issuer, study, SOP class, SOP Instance UID)
in an open-addressing table of 8-byte slots; two different instances share a fingerprint
with a probability of about n²/2⁶⁵ (n = 20,000: 10⁻¹¹), which would count one instance too
few.

Bounds, whatever the study (memory per exchange is a constant, not a function of its size):

* at most :data:`MAX_NODES` entries in the tree (patients, studies, series and SOP classes
  together). An instance that would need one more is counted in
  :attr:`InstanceTally.not_itemised` and nowhere else; the audit trail reports that count
  (:func:`gateway.audit.messages.instances_transferred`). Every patient and study named
  before the cap is named exactly, with exact counts;
* at most :data:`MAX_FINGERPRINTS` distinct instances are remembered for recognising
  repeats (1 MiB of slots); past that, :attr:`InstanceTally.repeats_unchecked` is set and
  further instances are counted without that check.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "MAX_FINGERPRINTS",
    "MAX_NODES",
    "InstanceSeen",
    "InstanceTally",
    "PatientTally",
    "StudyTally",
]

MAX_NODES = 4096
"""Entries the tally keeps: patients, studies, series and SOP classes together."""

_MIN_SLOTS = 1024  # 8 KiB: what a study of a few hundred instances needs
_MAX_SLOTS = 1 << 17  # 1 MiB
MAX_FINGERPRINTS = _MAX_SLOTS * 2 // 3
"""Distinct instances remembered for recognising repeats (the table is kept ≤ 2/3 full)."""

_MASK = (1 << 64) - 1


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSeen:
    """Identity of one DICOM instance relayed, read from its header as the part streamed by."""

    sop_class_uid: str | None
    sop_instance_uid: str | None
    study_uid: str | None
    series_uid: str | None
    patient_id: str | None
    patient_id_issuer: str | None  # Issuer of Patient ID (0010,0021)
    patient_name: str | None


@dataclass(slots=True)
class StudyTally:
    """One study of one patient: Series UID → SOP Class UID → distinct instances.

    None stands for an attribute the instance's header did not give.
    """

    series: dict[str | None, dict[str | None, int]] = field(default_factory=dict)

    def sop_classes(self) -> dict[str, int]:
        """SOP Class UID → distinct instances, over every series (instances without a SOP
        class are in no entry)."""
        classes: dict[str, int] = {}
        for counts in self.series.values():
            for uid, count in counts.items():
                if uid is not None:
                    classes[uid] = classes.get(uid, 0) + count
        return classes


@dataclass(slots=True)
class PatientTally:
    """One patient: the first name a header gave, and the studies, by Study UID (None: the
    header gave none; the audit falls back to the study of the request path)."""

    name: str | None = None
    studies: dict[str | None, StudyTally] = field(default_factory=dict)


class InstanceTally:
    """The aggregate of every instance noted; see the module docstring for its bounds."""

    __slots__ = ("_fingerprints", "_nodes", "_patients", "not_itemised", "noted")

    def __init__(self) -> None:
        self._patients: dict[tuple[str | None, str | None], PatientTally] = {}
        self._nodes = 0
        self._fingerprints = _Fingerprints()
        self.noted = 0  # every identity handed over, repeats included
        self.not_itemised = 0  # instances past MAX_NODES: counted here only

    def note(self, identity: InstanceSeen, *, default_study: str | None = None) -> None:
        """Count ``identity``; ``default_study`` stands in for a header without a Study UID.

        Patient ID and Issuer are compared stripped of surrounding spaces; an instance
        without a Patient ID belongs to the patient ``(None, None)`` whatever its issuer.
        """
        self.noted += 1
        patient_id = (identity.patient_id or "").strip() or None
        issuer = (identity.patient_id_issuer or "").strip() or None if patient_id else None
        study_uid = identity.study_uid or default_study
        series_uid = identity.series_uid
        sop_class = identity.sop_class_uid or None
        patient = self._patients.get((patient_id, issuer))
        study = None if patient is None else patient.studies.get(study_uid)
        series = None if study is None else study.series.get(series_uid)
        count = None if series is None else series.get(sop_class)
        needed = (patient is None) + (study is None) + (series is None) + (count is None)
        if needed and self._nodes + needed > MAX_NODES:
            self.not_itemised += 1
            return
        if patient is None:
            patient = self._patients[(patient_id, issuer)] = PatientTally()
            self._nodes += 1
            needed -= 1
        if patient.name is None and identity.patient_name:
            patient.name = identity.patient_name  # a repeat may be the first to name them
        uid = identity.sop_instance_uid
        if uid:
            key = hash((patient_id, issuer, study_uid, sop_class, uid))
            if not self._fingerprints.add(key):
                return  # a repeat
        self._nodes += needed
        if study is None:
            study = patient.studies[study_uid] = StudyTally()
        if series is None:
            series = study.series[series_uid] = {}
        series[sop_class] = (count or 0) + 1

    append = note  # the list-like spelling relays used before the tally (one argument)

    def patients(self) -> Iterator[tuple[str | None, str | None, PatientTally]]:
        """``(patient_id, issuer, tally)`` in the order the patients were first seen."""
        for (patient_id, issuer), tally in self._patients.items():
            yield patient_id, issuer, tally

    @property
    def repeats_unchecked(self) -> bool:
        """More than :data:`MAX_FINGERPRINTS` distinct instances: later repeats count again."""
        return self._fingerprints.full

    def __len__(self) -> int:
        return self.noted


class _Fingerprints:
    """A set of non-zero 64-bit values in one ``array`` (linear probing, ≤ 2/3 full)."""

    __slots__ = ("_slots", "_used", "full")

    def __init__(self) -> None:
        self._slots: array[int] | None = None  # allocated with the first instance
        self._used = 0
        self.full = False

    def add(self, value: int) -> bool:
        """Whether ``value`` was new (always True once the table is full)."""
        fingerprint = (value & _MASK) or 1  # 0 marks a free slot
        slots = self._slots
        if slots is None:
            slots = self._slots = array("Q", [0]) * _MIN_SLOTS
        mask = len(slots) - 1
        index = fingerprint & mask
        while held := slots[index]:
            if held == fingerprint:
                return False
            index = (index + 1) & mask
        if 3 * (self._used + 1) > 2 * len(slots):
            if len(slots) >= _MAX_SLOTS:
                self.full = True
                return True
            self._grow()
            return self.add(value)
        slots[index] = fingerprint
        self._used += 1
        return True

    def _grow(self) -> None:
        old = self._slots
        assert old is not None
        slots = self._slots = array("Q", [0]) * (2 * len(old))
        mask = len(slots) - 1
        for fingerprint in old:
            if fingerprint:
                index = fingerprint & mask
                while slots[index]:
                    index = (index + 1) & mask
                slots[index] = fingerprint
