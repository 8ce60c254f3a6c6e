"""Retrieval plans: which WADO-RS requests a manifest selection implies (pure, no I/O).

MADO Rev 1.1 X.4.2.1-2 (use cases 1 and 2), §6.X.2.14 and Rev 0.6 Appendix A. A plan is a list
of :class:`RetrieveRequest` descriptions; the caller turns each into a WADO-RS [RAD-107] or
XC-WADO [RAD-160] URL from its Retrieve Location UID or Retrieve URL. Rules:

* whole study: one study-level request when every series shares one retrieve location,
  else one series-level request per series (a study request cannot span two sources);
* chosen series (by modality and/or Series Instance UID): series-level requests;
* key images only: from the manifest's key-image flags; a series whose every listed instance
  is flagged is requested whole, otherwise instance by instance. When the manifest has no flags,
  the plan has no requests, ``key_images_available`` is False, and ``key_object_series`` lists
  the KO series to fetch; :func:`plan_from_key_image_notes` then plans from the notes read.

Consumers must tolerate more or fewer instances than a study or series request returns
(§X.1.1.2); the plan lists what the manifest names, nothing more.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Literal

from pydicom.dataset import Dataset

from mado.errors import SelectionError
from mado.kin import KeyImageNote, read_key_image_note
from mado.model import Manifest, Series
from mado.vocab import KOS_SOP_CLASS_UID
from routing.ids import Oid, Uid

__all__ = [
    "Plan",
    "RetrieveRequest",
    "plan_from_key_image_notes",
    "plan_from_notes",
    "plan_key_images",
    "plan_series",
    "plan_study",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrieveRequest:
    """One WADO-RS retrieve: a study, a whole series, or listed instances of one series."""

    study_uid: Uid
    series_uid: Uid | None = None
    instance_uids: tuple[Uid, ...] = ()
    retrieve_location_uid: Oid | None = None
    opaque_location: str | None = None  # a location identifier that is not an OID, as written
    retrieve_url: str | None = None

    @property
    def level(self) -> Literal["study", "series", "instance"]:
        if self.series_uid is None:
            return "study"
        return "instance" if self.instance_uids else "series"


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """The requests for a selection; for key images, whether the manifest could answer."""

    requests: tuple[RetrieveRequest, ...]
    key_images_available: bool = True
    key_object_series: tuple[RetrieveRequest, ...] = ()

    @property
    def instance_count(self) -> int | None:
        """Instances named explicitly; ``None`` when a study or series request is included."""
        if any(r.level != "instance" for r in self.requests):
            return None
        return sum(len(r.instance_uids) for r in self.requests)


def _series_request(
    manifest: Manifest, series: Series, instances: tuple[Uid, ...] = ()
) -> RetrieveRequest:
    return RetrieveRequest(
        study_uid=manifest.study.uid,
        series_uid=series.uid,
        instance_uids=instances,
        retrieve_location_uid=series.retrieve_location_uid,
        opaque_location=series.opaque_location,
        retrieve_url=series.retrieve_url,
    )


def plan_study(manifest: Manifest) -> Plan:
    """The whole study."""
    locations = {
        (s.retrieve_location_uid, s.opaque_location, s.retrieve_url) for s in manifest.series
    }
    if len(locations) == 1:
        rluid, opaque, url = next(iter(locations))
        request = RetrieveRequest(
            study_uid=manifest.study.uid,
            retrieve_location_uid=rluid,
            opaque_location=opaque,
            retrieve_url=url,
        )
        return Plan(requests=(request,))
    return Plan(requests=tuple(_series_request(manifest, s) for s in manifest.series))


def plan_series(
    manifest: Manifest,
    *,
    modalities: Collection[str] = (),
    series_uids: Collection[str] = (),
) -> Plan:
    """Whole series chosen by modality (any letter case) or Series Instance UID.

    Raises :class:`SelectionError` for a UID the manifest does not list, or when nothing matches.
    """
    wanted_modalities = {m.upper() for m in modalities}
    wanted_uids = {str(Oid(u)) for u in series_uids}
    unknown = wanted_uids - {str(s.uid) for s in manifest.series}
    if unknown:
        raise SelectionError(f"series not in the manifest: {', '.join(sorted(unknown))}")
    chosen = [
        s
        for s in manifest.series
        if s.uid in wanted_uids or (s.modality or "").upper() in wanted_modalities
    ]
    if not chosen:
        raise SelectionError(
            f"no series with modality {', '.join(sorted(wanted_modalities)) or '-'}; "
            f"the manifest has {', '.join(manifest.modalities) or 'no modality'}"
        )
    return Plan(requests=tuple(_series_request(manifest, s) for s in chosen))


def _plan_flagged(manifest: Manifest, flagged: set[str]) -> tuple[RetrieveRequest, ...]:
    requests = []
    for series in manifest.series:
        uids = tuple(i.sop_instance_uid for i in series.instances if i.sop_instance_uid in flagged)
        if not uids:
            continue
        whole = len(uids) == len(series.instances)
        requests.append(_series_request(manifest, series, () if whole else uids))
    return tuple(requests)


def key_object_series(manifest: Manifest) -> tuple[RetrieveRequest, ...]:
    """Series-level requests for the series holding KOS/KIN instances (modality KO)."""
    return tuple(
        _series_request(manifest, s)
        for s in manifest.series
        if (s.modality or "").upper() == "KO"
        or any(i.sop_class_uid == KOS_SOP_CLASS_UID for i in s.instances)
    )


def plan_key_images(manifest: Manifest) -> Plan:
    """Only the images the manifest's key-image flags name; see the module contract."""
    if not manifest.has_key_image_flags:
        return Plan(
            requests=(), key_images_available=False, key_object_series=key_object_series(manifest)
        )
    flagged = {str(i.sop_instance_uid) for _, i in manifest.instances() if i.flagged_by}
    return Plan(requests=_plan_flagged(manifest, flagged))


def plan_from_key_image_notes(manifest: Manifest, notes: Iterable[Dataset]) -> Plan:
    """The fallback: plan the images the fetched Key Image Notes reference (Appendix A).

    Only images the manifest lists are planned; references to other instances are ignored
    because the manifest's source published only those.
    """
    return plan_from_notes(
        manifest, (note for ds in notes if (note := read_key_image_note(ds)) is not None)
    )


def plan_from_notes(manifest: Manifest, notes: Iterable[KeyImageNote]) -> Plan:
    """:func:`plan_from_key_image_notes` for notes already read (:func:`mado.jobs.read_notes`)."""
    flagged = {
        str(ref.sop_instance_uid)
        for note in notes
        if note.study_uid == manifest.study.uid
        for ref in note.references
    }
    return Plan(requests=_plan_flagged(manifest, flagged))
