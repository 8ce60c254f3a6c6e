"""KOS ↔ FHIR conversion of MADO manifests (MADO Rev 1.1 §6.X.5; MADO FHIR IG mapping table).

Conversion goes through the model: read the source format, write the other. Every element of
the model is mapped both ways, so KOS → FHIR → KOS and FHIR → KOS → FHIR preserve every mapped
field (tests/unit/mado check it on generated manifests). Not mapped, by design:

* the manifest's own SOP Instance UID, series and document title (FHIR has no place for them;
  a KOS written from FHIR gets new UIDs and the Rev 1.1 title);
* Universal Entity ID Types other than ``ISO`` (FHIR identifier systems are URIs: an ISO OID
  becomes ``urn:oid:…``, anything else is kept as a URI and read back as type ``URI``);
* the time of a date-time when the manifest has no Timezone Offset From UTC (FHIR requires a
  zone with a time).
"""

from __future__ import annotations

from pathlib import Path

from mado.load import Format, Reading, read_path, write_path

__all__ = ["convert_file"]


def convert_file(source: str | Path, target: str | Path, to: Format) -> Reading:
    """Convert the manifest file ``source`` into format ``to`` at ``target``.

    Returns the reading of the source (its findings tell what was normalised on the way).
    Raises :class:`~mado.errors.ManifestError` subclasses for unreadable or invalid input.
    """
    reading = read_path(source)
    write_path(reading.manifest, target, to)
    return reading
