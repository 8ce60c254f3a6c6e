"""What a manifest worker process runs (:mod:`mado.sandbox`): one function per use.

Each takes the raw bytes, applies :mod:`mado.guard`'s limits before any parser, and returns
only what its caller needs — a model, a report, encoded bytes — never a pydicom dataset or a
decoded JSON document, so that what crosses back to the caller is as small as the manifest's
meaning. All raise :class:`~mado.errors.ManifestError` subclasses only.
"""

from __future__ import annotations

import io
import warnings

import orjson
from pydicom import dcmread

from mado.create import SeriesLocation, build_manifest, datasets_from_metadata
from mado.errors import CreationError, ManifestError
from mado.guard import DEFAULT_LIMITS, ParseLimits, guard_dicom, guard_json
from mado.kin import KeyImageNote, read_key_image_note
from mado.load import Format, encode, read_bytes
from mado.model import Manifest
from mado.report import Finding, Report
from mado.validate import validate_bytes

__all__ = [
    "convert_manifest",
    "create_manifest",
    "read_manifest",
    "read_notes",
    "validate_manifest",
]


def read_manifest(
    data: bytes, source: str, limits: ParseLimits = DEFAULT_LIMITS
) -> tuple[Manifest, tuple[Finding, ...]]:
    """The manifest in ``data`` and the findings reading it produced."""
    reading = read_bytes(data, source, limits)
    return reading.manifest, reading.findings


def validate_manifest(data: bytes, source: str, limits: ParseLimits = DEFAULT_LIMITS) -> Report:
    """The validation report of ``data`` (``manifest validate``)."""
    return validate_bytes(data, source, limits)


def convert_manifest(
    data: bytes, source: str, to: Format, limits: ParseLimits = DEFAULT_LIMITS
) -> tuple[bytes, Manifest, tuple[Finding, ...]]:
    """``data`` converted to ``to``: the encoded document, the model and the findings."""
    reading = read_bytes(data, source, limits)
    return encode(reading.manifest, to), reading.manifest, reading.findings


def create_manifest(
    metadata: bytes,
    source: str,
    location: SeriesLocation,
    institution: str | None,
    limits: ParseLimits = DEFAULT_LIMITS,
) -> tuple[bytes, Manifest]:
    """A KOS manifest (Part 10 bytes, and its model) from WADO-RS study metadata (JSON).

    What this returns passes :func:`~mado.validate.validate_bytes`: a manifest with errors is
    refused with :class:`~mado.errors.CreationError` naming them (metadata that lacks what
    MADO requires, such as an Institution Name when none is given), never written.
    """
    guard_json(metadata, limits)
    try:
        document = orjson.loads(metadata)
    except orjson.JSONDecodeError as exc:
        raise CreationError(f"{source}: not valid JSON ({exc.msg})") from None
    manifest = build_manifest(datasets_from_metadata(document), location, institution=institution)
    data = encode(manifest, "kos")
    errors = validate_bytes(data, "the created manifest", limits).errors
    if errors:
        listed = "; ".join(f"{e.path}: {e.message}" for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        hint = " (give --institution NAME)" if "InstitutionName" in listed else ""
        raise CreationError(
            f"{source}: the manifest would not be valid MADO: {listed}{more}{hint}"
        )
    return data, manifest


def read_notes(
    objects: list[bytes], limits: ParseLimits = DEFAULT_LIMITS
) -> tuple[KeyImageNote, ...]:
    """The Key Image Notes among ``objects`` (Part 10 files from a KO series); an object that
    is unreadable, over the limits or no note is skipped: it cannot be a note to plan from."""
    notes = []
    for data in objects:
        try:
            readable = guard_dicom(data, limits)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                note = read_key_image_note(dcmread(io.BytesIO(readable)))
        except ManifestError:
            continue
        except Exception:  # noqa: S112 - pydicom's decoding errors: not a note we can read
            continue
        if note is not None:
            notes.append(note)
    return tuple(notes)
