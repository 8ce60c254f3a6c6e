"""Errors raised by the routing core.

::

    RoutingError
     ├── InvalidIdentifier      a UID or OID that breaks PS3.5 §9.1 syntax (also a ValueError)
     ├── MediaTypeError         a Content-Type or Accept range that is no media type (a ValueError)
     ├── InvalidRequestPath     an XC-WADO path or query outside the RAD-160 grammar
     ├── ConfigError            a configuration with one or more problems, each with its field path
     ├── UnsupportedTransferSyntax  nothing acceptable but Implicit VR LE / Explicit VR BE
     └── NotRoutable            a well-formed request the registry cannot route
          ├── UnknownCommunity  homeCommunityId with no responding gateway configured
          ├── UnknownSource     Retrieve Location UID with no Imaging Document Source configured
          └── RetrieveUrlRefused a ``retrieveurl`` whose origin the URL policy does not allow

The gateway maps these to HTTP statuses in one place (``gateway/errors.py``); nothing here
knows about HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "InvalidIdentifier",
    "InvalidRequestPath",
    "MediaTypeError",
    "NotRoutable",
    "RetrieveUrlRefused",
    "RoutingError",
    "UnsupportedTransferSyntax",
    "UnknownCommunity",
    "UnknownSource",
]


class RoutingError(Exception):
    """Base of every error the routing core raises."""


class InvalidIdentifier(RoutingError, ValueError):
    """A UID or OID failed validation; ``kind`` says which identifier it was meant to be."""

    def __init__(self, kind: str, value: str, reason: str) -> None:
        self.kind = kind
        self.value = value
        self.reason = reason
        super().__init__(f"invalid {kind} {_shorten(value)!r}: {reason}")


class MediaTypeError(RoutingError, ValueError):
    """A Content-Type or media range that cannot be read as a media type (RFC 9110 §8.3.1)."""


class InvalidRequestPath(RoutingError):
    """The request path or query does not follow the RAD-160 grammar."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigProblem:
    """One problem in a configuration document: where (``a.b[2].c``) and why; ``line`` and
    ``column`` (from 1) when the file's text locates it (:mod:`routing.positions`)."""

    path: str
    reason: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        return f"{self.path or '<document>'}: {self.reason}"

    def located(self, source: str) -> str:
        """``source:line:column: path: reason`` (the position left out when unknown)."""
        where = source if self.line is None else f"{source}:{self.line}:{self.column or 1}"
        return f"{where}: {self}"


class ConfigError(RoutingError):
    """A configuration was rejected; ``problems`` lists every problem found, not just the first."""

    def __init__(self, problems: Sequence[ConfigProblem], source: str = "configuration") -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source} has {len(self.problems)} problem(s):\n{lines}")


class UnsupportedTransferSyntax(RoutingError):
    """Every acceptable media range asks for a transfer syntax a gateway never requests over
    DICOMweb (Implicit VR Little Endian, Explicit VR Big Endian: PS3.18 §8.7.3.5.2)."""

    def __init__(self, where: str) -> None:
        self.where = where  # "Accept header" or "accept query parameter"
        super().__init__(
            f"the {where} asks only for Implicit VR Little Endian or Explicit VR Big Endian, "
            "which are not available via DICOMweb; ask for Explicit VR Little Endian "
            "(1.2.840.10008.1.2.1) or a compressed transfer syntax"
        )


class NotRoutable(RoutingError):
    """A valid request that the current registry has no route for."""


class UnknownCommunity(NotRoutable):
    """No responding gateway is configured for this homeCommunityId."""

    def __init__(self, home_community_id: str) -> None:
        self.home_community_id = home_community_id
        super().__init__(f"no responding gateway is configured for community {home_community_id}")


class UnknownSource(NotRoutable):
    """No Imaging Document Source is configured for this Retrieve Location UID."""

    def __init__(self, retrieve_location_uid: str) -> None:
        self.retrieve_location_uid = retrieve_location_uid
        super().__init__(
            f"no imaging document source is configured for Retrieve Location UID "
            f"{retrieve_location_uid}"
        )


class RetrieveUrlRefused(NotRoutable):
    """A ``retrieveurl`` named a target the URL policy does not allow; ``rule`` says which rule."""

    def __init__(self, target: str, rule: str) -> None:
        self.target = target
        self.rule = rule
        super().__init__(f"retrieveurl refused ({rule})")


def _shorten(value: str, limit: int = 80) -> str:
    return value if len(value) <= limit else value[:limit] + "…"
