"""Manifest files: recognise the format, parse, read into the model; write either format.

A KOS manifest is a DICOM Part 10 file (``DICM`` at offset 128, MADO Rev 1.1 §6.X.2.2); a
FHIR manifest is a JSON document Bundle (§6.X.3). :func:`parse_bytes` recognises which, and
checks a DICOM file for truncation: pydicom stops silently at the end of a short file, so every
element whose value is shorter than its declared length is reported instead of being read as
a manifest with data missing.

Before any parser sees the bytes, :mod:`mado.guard` holds them to :class:`ParseLimits`
(inflated size, nesting, element count); :mod:`mado.sandbox` runs all of this in a worker
process that also bounds time and memory.

Raises, all :class:`~mado.errors.ManifestError`: :class:`~mado.errors.UnreadableManifest`
(I/O failure, neither format, truncated or corrupt), :class:`~mado.errors.ManifestTooComplex`
(a limit), :class:`~mado.errors.NotAManifest` and :class:`~mado.errors.InvalidManifest` from
the readers.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset

from mado.errors import InvalidManifest, ManifestTooComplex, UnreadableManifest
from mado.fhir_reader import read_fhir
from mado.fhir_writer import write_fhir
from mado.guard import DEFAULT_LIMITS, ParseLimits, guard_dicom, guard_json
from mado.kos_reader import read_kos
from mado.kos_writer import write_kos
from mado.model import Manifest
from mado.report import Finding

__all__ = [
    "Format",
    "Parsed",
    "Reading",
    "encode",
    "parse_bytes",
    "read_bytes",
    "read_file",
    "read_path",
    "write_path",
]

Format = Literal["kos", "fhir"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Parsed:
    """A parsed but not yet interpreted manifest document: a dataset or decoded JSON."""

    format: Format
    source: str
    dataset: Dataset | None = None
    document: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reading:
    """A manifest read from a document, with the findings normalisation produced."""

    parsed: Parsed
    manifest: Manifest
    findings: tuple[Finding, ...]


def parse_bytes(
    data: bytes, source: str = "<bytes>", limits: ParseLimits = DEFAULT_LIMITS
) -> Parsed:
    """Recognise and parse a manifest document within ``limits``; see the module contract."""
    try:
        if len(data) >= 132 and data[128:132] == b"DICM":
            readable = guard_dicom(data, limits)
            return Parsed(format="kos", source=source, dataset=_parse_dicom(readable, source))
        head = data.lstrip()[:1]
        if head in (b"{", b"["):
            guard_json(data, limits)
            return Parsed(format="fhir", source=source, document=_parse_json(data, source))
    except ManifestTooComplex as exc:
        raise ManifestTooComplex(f"{source}: too complex to read safely: {exc}") from None
    if not data:
        raise UnreadableManifest(f"{source}: empty file")
    raise UnreadableManifest(
        f"{source}: neither a DICOM Part 10 file (no 'DICM' marker at byte 128) nor a JSON document"
    )


def read_bytes(
    data: bytes, source: str = "<bytes>", limits: ParseLimits = DEFAULT_LIMITS
) -> Reading:
    """Parse and read a manifest document into the model."""
    return read_parsed(parse_bytes(data, source, limits))


def read_parsed(parsed: Parsed) -> Reading:
    """Read an already parsed document into the model."""
    if parsed.dataset is not None:
        manifest, findings = read_kos(parsed.dataset)
    else:
        manifest, findings = read_fhir(parsed.document)
    return Reading(parsed=parsed, manifest=manifest, findings=findings)


def read_path(path: str | Path) -> Reading:
    """Read the manifest file at ``path``."""
    return read_bytes(read_file(path), str(path))


def encode(manifest: Manifest, format: Format) -> bytes:
    """``manifest`` as a KOS Part 10 file or a FHIR JSON Bundle.

    Raises :class:`~mado.errors.InvalidManifest` when a value cannot be written in that format
    (a Modality outside the DICOM default character repertoire, read from a FHIR manifest).
    """
    if format == "fhir":
        try:
            return orjson.dumps(write_fhir(manifest), option=orjson.OPT_INDENT_2)
        except orjson.JSONEncodeError as exc:
            raise InvalidManifest("FHIR", f"a value cannot be written as JSON ({exc})") from None
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # pydicom warns about each value outside its VR's rules; the validator reports
            # those that matter, and a value that cannot be written at all raises below.
            warnings.simplefilter("ignore")
            write_kos(manifest).save_as(buffer, enforce_file_format=True)
    except Exception as exc:
        # pydicom's writer raises what encoding a value hits (UnicodeEncodeError for a code
        # string outside the default repertoire, ValueError, struct.error): the value is the
        # problem, not the program.
        raise InvalidManifest(
            "KOS", f"a value cannot be written as DICOM ({_first_line(exc)})"
        ) from None
    return buffer.getvalue()


def write_path(manifest: Manifest, path: str | Path, format: Format) -> None:
    """Write ``manifest`` to ``path`` as a KOS Part 10 file or FHIR JSON Bundle."""
    data = encode(manifest, format)
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise UnreadableManifest(f"{path}: cannot write ({exc.strerror})") from None


def read_file(path: str | Path) -> bytes:
    """The bytes of the file at ``path``; :class:`UnreadableManifest` when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableManifest(f"{path}: cannot read ({exc.strerror})") from None


def _parse_json(data: bytes, source: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg:  # orjson stops at 1024 levels
            raise ManifestTooComplex("the JSON document nests too deep") from None
        reason = f"not valid JSON ({exc.msg} at byte {exc.pos})"
        raise UnreadableManifest(f"{source}: {reason}") from None


def _parse_dicom(data: bytes, source: str) -> Dataset:
    try:
        with warnings.catch_warnings():
            # pydicom warns about oddities it tolerates; the validator reports what matters.
            warnings.simplefilter("ignore")
            ds = dcmread(io.BytesIO(data))
            truncated = _short_element(ds)
            if truncated is None:
                ds.walk(lambda _ds, _elem: None)
    except Exception as exc:
        # pydicom's reader raises whatever its decoding hits (struct.error, NotImplementedError
        # for an unknown VR, UnicodeDecodeError, IndexError…): none is a contract, every one
        # means the bytes are not a readable DICOM file. Every element has been converted by
        # the walk above, so nothing undecodable is left for the manifest reader to trip on.
        raise UnreadableManifest(f"{source}: corrupt DICOM file ({_first_line(exc)})") from None
    if truncated is not None:
        raise UnreadableManifest(
            f"{source}: truncated DICOM file (element {truncated} is cut short)"
        )
    return ds


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else "") or type(exc).__name__


def _short_element(ds: Dataset) -> str | None:
    """The tag of the first element whose value is shorter than its declared length."""
    for elem in ds.elements():
        if isinstance(elem, RawDataElement):
            length = elem.length
            if elem.value is not None and length != 0xFFFFFFFF and len(elem.value) != length:
                return str(elem.tag)
        elif elem.VR == "SQ":
            for item in elem.value:
                if (found := _short_element(item)) is not None:
                    return found
    return None
