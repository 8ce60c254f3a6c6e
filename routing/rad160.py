"""The XC-WADO Retrieve [RAD-160] request grammar.

::

    {endpoint}/homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}
              /studies/{study}[/series/{series}[/instances/{sop}]][/{rest}]
              [?retrieveurl={Retrieve URL}]

Source: MADO Rev 1.1 Appendix XA, Figures XA-2 and XA-4 (the XC-WADO supplement's own ABNF
was not available; see spec-digest §2.1 and §9). Ingress is tolerant of what the
specification's own examples contain: ``study`` or ``studies``; ``retrieveurl`` in any
letter case; ``urn:oid:`` or ``oid:`` prefixes on the OIDs; a trailing slash; the two literal
segments in any letter case. Every identifier is validated here, before anything is routed.

A query whose ``accept`` (or ``transfer-syntax``) parameter asks for Implicit VR Little
Endian or Explicit VR Big Endian is refused here (:func:`routing.accept.check_query`): the
query is forwarded unedited, and those syntaxes are never requested over DICOMweb.

``rest`` is what follows the deepest UID — ``metadata``, ``rendered``, ``thumbnail``,
``frames/1,2``, ``bulk/7fe00010`` — passed through untouched once it is known to be made of
safe segments.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from routing.accept import check_query
from routing.errors import InvalidRequestPath
from routing.ids import HomeCommunityId, Oid, Uid

__all__ = ["ResourceKind", "Rad160Request", "parse_rad160", "strip_query_param"]

_RETRIEVE_URL_PARAM = "retrieveurl"
_SAFE_SEGMENT = re.compile(r"[A-Za-z0-9._,~-]+")
_MAX_REST_SEGMENTS = 16


class ResourceKind(enum.StrEnum):
    """What a request asks for; a bounded set, usable as a metric label."""

    INSTANCES = "instances"  # Get Instances at study, series or instance level
    METADATA = "metadata"
    RENDERED = "rendered"
    THUMBNAIL = "thumbnail"
    FRAMES = "frames"
    BULKDATA = "bulkdata"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rad160Request:
    """A parsed, validated RAD-160 request.

    ``relay_path`` and ``raw_query`` are the request's own bytes from ``homeCommunityId/`` on,
    for an initiating gateway that forwards them unchanged; ``resource_path`` is the canonical
    DICOMweb path (always ``studies``) for a responding gateway talking to a source.
    """

    home_community_id: HomeCommunityId
    retrieve_location_uid: Oid
    study: Uid
    series: Uid | None
    instance: Uid | None
    rest: tuple[str, ...]
    retrieve_url: str | None
    relay_path: str
    raw_query: str

    @property
    def level(self) -> str:
        if self.instance is not None:
            return "instance"
        return "series" if self.series is not None else "study"

    @property
    def kind(self) -> ResourceKind:
        if not self.rest:
            return ResourceKind.INSTANCES
        head = self.rest[0]
        for kind in ResourceKind:
            if head == kind.value:
                return kind
        return ResourceKind.BULKDATA

    @property
    def resource_path(self) -> str:
        parts = ["studies", self.study]
        if self.series is not None:
            parts += ["series", self.series]
        if self.instance is not None:
            parts += ["instances", self.instance]
        parts += self.rest
        return "/".join(parts)

    @property
    def prefix(self) -> str:
        """Canonical ``homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}/``."""
        hcid, rluid = self.home_community_id, self.retrieve_location_uid
        return f"homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}/"

    @property
    def source_query(self) -> str:
        """The raw query without ``retrieveurl``: what a source receives."""
        return strip_query_param(self.raw_query, _RETRIEVE_URL_PARAM)


def parse_rad160(path: str, raw_query: str = "") -> Rad160Request:
    """Parse the path below the gateway's endpoint (starting at ``homeCommunityId``).

    ``path`` is the raw (still percent-encoded) path; ``raw_query`` the raw query string
    without ``?``. Raises :class:`InvalidRequestPath` for a path outside the grammar,
    :class:`~routing.errors.InvalidIdentifier` for a malformed UID or OID and
    :class:`~routing.errors.UnsupportedTransferSyntax` for a query asking for a transfer
    syntax DICOMweb does not carry.
    """
    relay_path = path.lstrip("/")
    segments = relay_path.split("/")
    if segments and segments[-1] == "":
        segments.pop()  # one trailing slash, as in the MADO examples
    if any(segment == "" for segment in segments):
        raise InvalidRequestPath("empty path segment")
    if len(segments) < 6:
        raise InvalidRequestPath(
            "expected homeCommunityId/{hcid}/RetrieveLocationUID/{rluid}/studies/{study}"
        )
    _expect_literal(segments[0], ("homeCommunityId",))
    hcid = HomeCommunityId(_decoded(segments[1]))
    _expect_literal(segments[2], ("RetrieveLocationUID",))
    rluid = Oid(_decoded(segments[3]))
    _expect_literal(segments[4], ("studies", "study"))
    study = Uid(_decoded(segments[5]))

    series = instance = None
    index = 6
    if len(segments) > index and segments[index] == "series":
        if len(segments) == index + 1:
            raise InvalidRequestPath("series without a Series Instance UID")
        series = Uid(_decoded(segments[index + 1]))
        index += 2
        if len(segments) > index and segments[index] == "instances":
            if len(segments) == index + 1:
                raise InvalidRequestPath("instances without a SOP Instance UID")
            instance = Uid(_decoded(segments[index + 1]))
            index += 2
    rest = tuple(segments[index:])
    _check_rest(rest)
    check_query(raw_query)

    return Rad160Request(
        home_community_id=hcid,
        retrieve_location_uid=rluid,
        study=study,
        series=series,
        instance=instance,
        rest=rest,
        retrieve_url=_retrieve_url(raw_query),
        relay_path=relay_path,
        raw_query=raw_query,
    )


def strip_query_param(raw_query: str, name: str) -> str:
    """Drop every ``name=…`` pair (name compared case-insensitively), keeping the rest as sent."""
    if not raw_query:
        return ""
    kept = [pair for pair in raw_query.split("&") if _pair_name(pair) != name]
    return "&".join(kept)


def _pair_name(pair: str) -> str:
    return unquote_plus(pair.partition("=")[0]).lower()


def _retrieve_url(raw_query: str) -> str | None:
    values: Sequence[str] = [
        unquote_plus(pair.partition("=")[2])
        for pair in raw_query.split("&")
        if pair and _pair_name(pair) == _RETRIEVE_URL_PARAM
    ]
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequestPath("retrieveurl given more than once")
    value = values[0]
    if not value:
        raise InvalidRequestPath("retrieveurl is empty")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in value):
        raise InvalidRequestPath("retrieveurl contains spaces or control characters")
    return value


def _expect_literal(segment: str, allowed: tuple[str, ...]) -> None:
    if segment.lower() not in {word.lower() for word in allowed}:
        raise InvalidRequestPath(f"expected {' or '.join(allowed)}, found {segment[:40]!r}")


def _decoded(segment: str) -> str:
    return unquote(segment) if "%" in segment else segment


def _check_rest(rest: tuple[str, ...]) -> None:
    if len(rest) > _MAX_REST_SEGMENTS:
        raise InvalidRequestPath("too many path segments")
    if rest and rest[0] in {"series", "instances"}:
        raise InvalidRequestPath(f"{rest[0]} without a UID")
    for segment in rest:
        # Percent signs are refused outright: a source must never see an encoded ".." or "/".
        if _SAFE_SEGMENT.fullmatch(segment) is None or segment in {".", ".."}:
            raise InvalidRequestPath(f"unsupported path segment {segment[:40]!r}")
