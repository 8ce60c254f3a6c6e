"""Errors raised by the manifest package.

::

    ManifestError
     ├── UnreadableManifest   bytes that are not a readable DICOM file or JSON document
     │                        (truncated, corrupt, empty, unknown format)
     ├── NotAManifest         a readable document of the wrong kind: a DICOM object that is not a
     │                        Key Object Selection document, a FHIR resource that is not a Bundle
     │                        with an ImagingStudy
     ├── InvalidManifest      a manifest whose content cannot be represented: an invalid UID, no
     │                        Study Instance UID, a second study (MADO §6.X.2.13: one study only)
     ├── CreationError        WADO-RS metadata from which no manifest can be built (Content Creator)
     ├── ManifestTooComplex   a manifest that asks more of its reader than the limits allow:
     │                        a deflated data set inflating past the cap, sequences nested too
     │                        deep, too many elements or values, a parse that runs too long or
     │                        needs too much memory (:mod:`mado.guard`, :mod:`mado.sandbox`)
     ├── SelectionError       a retrieval selection that names nothing in the manifest
     └── UnroutableSeries     a selected series with nothing to address it by: its location
                              identifier is no OID and is not mapped, and it has no usable
                              Retrieve URL (or, retrieving directly, no Retrieve URL)

Every message is one line that names the problem and, where there is one, the attribute path;
the command line prints it as is. Nothing here knows about HTTP: the gateway maps these in
its one error middleware if it ever serves them.
"""

from __future__ import annotations

__all__ = [
    "CreationError",
    "InvalidManifest",
    "ManifestError",
    "ManifestTooComplex",
    "NotAManifest",
    "SelectionError",
    "UnreadableManifest",
    "UnroutableSeries",
]


class ManifestError(Exception):
    """Base of every error the manifest package raises."""


class UnreadableManifest(ManifestError):
    """The input could not be parsed as DICOM Part 10 or JSON at all."""


class NotAManifest(ManifestError):
    """The input parsed, but it is not a MADO manifest of either format."""


class InvalidManifest(ManifestError):
    """A manifest with content the model cannot hold; ``path`` names the attribute."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidManifest], tuple[str, str]]:
        return type(self), (self.path, self.reason)


class ManifestTooComplex(ManifestError):
    """The manifest exceeds a parsing limit; the message says which one."""


class CreationError(ManifestError):
    """No MADO manifest can be created from the metadata given."""


class SelectionError(ManifestError):
    """A retrieval selection (series UID, modality) matches nothing in the manifest."""


class UnroutableSeries(ManifestError):
    """A planned retrieval that cannot be addressed. ``where`` names the series (or the study,
    for a whole-study request), ``identifier`` the location identifier as written."""

    def __init__(self, where: str, identifier: str | None, reason: str) -> None:
        self.where = where
        self.identifier = identifier
        self.reason = reason
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type[UnroutableSeries], tuple[str, str | None, str]]:
        return type(self), (self.where, self.identifier, self.reason)
