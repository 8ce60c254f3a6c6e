"""The record of one request's crossing: one inbound request, any number of upstream legs.

The relay writes typed facts here and nothing else (design.md §4): each :class:`Leg` is one
upstream conversation — the base URLs tried (:class:`Attempt`), the redirects met
(:class:`Hop`), what the policies refused (:class:`Refusal`), the status, bytes and times
of the answer relayed, how its body ended (:class:`StreamEnd`). Instance identities go to
an :class:`~gateway.instances.InstanceTally` as they stream, so the record's size does not
depend on the study's.

Sinks derive everything from the record, one way (:class:`Telemetry`): metrics, security
alerts and the audit trail. Two moments reach them: a leg's first byte
(:meth:`Telemetry.answered`, before that byte is written: what must be out before the client
sees data) and the seal (:meth:`Telemetry.seal`, once, when the exchange is over: a relay
seals *before* its last bytes go out, so the audit record is in the journal before the
client can see a complete answer, design.md §6; anything else is sealed when the handler
returns, before aiohttp sends the response). A sink must not block and must not raise.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Protocol

from gateway.instances import InstanceSeen, InstanceTally
from routing.urlpolicy import Rule

__all__ = [
    "Attempt",
    "DocumentOutcome",
    "Exchange",
    "ExchangeSink",
    "Failure",
    "Hop",
    "InstanceSeen",
    "Leg",
    "LegSink",
    "Outcome",
    "Refusal",
    "RefusalKind",
    "StreamEnd",
    "Telemetry",
]


class Outcome(enum.StrEnum):
    """How the exchange ended, as far as the client is concerned (a bounded metric label)."""

    COMPLETE = "complete"  # the whole upstream answer reached the client
    REFUSED = "refused"  # answered with a problem before any upstream contact
    FAILED = "failed"  # answered with a problem after trying the upstream
    ABORTED = "aborted"  # connection aborted mid-body (upstream failure or client gone)


class Failure(enum.StrEnum):
    """Why an attempt gave no answer that could be relayed (a bounded metric label)."""

    CONNECT = "connect"
    TLS = "tls"
    CLOSED = "closed"  # the connection closed before a whole head arrived
    PROTOCOL = "protocol"  # a head that could not be parsed, or an answer that cannot be relayed
    CONNECT_TIMEOUT = "connect-timeout"
    READ_TIMEOUT = "read-timeout"
    ADDRESS = "address"  # the address policy refused the base URL's host


class StreamEnd(enum.StrEnum):
    """How the body of a relayed answer ended."""

    COMPLETE = "complete"
    TRUNCATED = "truncated"  # the body ended or broke before it was complete
    STALLED = "stalled"  # no data from the upstream for read_idle_s
    CLIENT = "client"  # the client went away first


class RefusalKind(enum.StrEnum):
    """A refusal the security trail must hear of; the values are security event kinds."""

    ADDRESS = "address-refused"  # a base URL whose address the policy refuses
    REDIRECT = "redirect-refused"  # a redirect the policy does not follow
    TLS = "tls-failure"  # TLS with the upstream failed
    RETRIEVE_URL = "retrieve-url-refused"  # a retrieveurl the URL policy does not allow
    CLIENT = "client-refused"  # a client certificate subject not on the allowed list


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One base URL tried: the status of its final answer (None: no answer), or why it failed.

    An answer that arrived but cannot be relayed has both (``failure`` PROTOCOL).
    """

    base_url: str
    status: int | None = None
    failure: Failure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Hop:
    """One redirect answer: followed (``refused`` None) or refused under ``refused``."""

    status: int
    target: str
    refused: Rule | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """An outbound target the policies refused. ``detail`` is our own sentence;
    ``address_class`` the address class when the address policy refused it."""

    kind: RefusalKind
    target: str
    detail: str
    address_class: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DocumentOutcome:
    """One document a SOAP retrieve (RAD-69 / RAD-75) asked for, and what became of it.

    ``error_code`` is None when the document was returned, else the RegistryError code
    reported for it; ``upstream`` names the leg's upstream that answered for it (None: no
    upstream was asked, e.g. an unknown repository). The list on the exchange is bounded by
    the request envelope's size cap, not by the data.
    """

    study_uid: str
    series_uid: str
    document_uid: str
    repository_id: str
    home_community_id: str | None
    error_code: str | None = None
    upstream: str | None = None


@dataclass(slots=True, kw_only=True)
class Leg:
    """One upstream conversation of an exchange; times are seconds since the exchange began.

    ``url`` is the last URL requested (after redirects); ``status`` the status of the answer
    relayed, or of the last one refused. The lists are bounded by the upstream's
    configuration (base URLs, redirect hops), not by the data.
    """

    upstream: str
    started_s: float
    url: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    status: int | None = None
    bytes: int = 0
    first_byte_s: float | None = None
    end_s: float | None = None
    end: StreamEnd | None = None  # None: no body was relayed
    transaction: str | None = None  # RAD-160 | RAD-107 | RAD-69 | RAD-75; None: from the route

    @property
    def answered(self) -> bool:
        """Whether its answer reached the client (its first byte was announced)."""
        return self.first_byte_s is not None


@dataclass(slots=True, kw_only=True)
class Exchange:
    """Mutable while the request runs; read-only by convention once handed to the sinks."""

    request_id: str  # the client's X-Request-ID when it offered a valid one, else our own
    method: str
    path: str
    client: str | None  # the peer's address
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    route_kind: str = "none"  # relay | source | retrieve-url | manifest | none
    transaction: str = "RAD-160"  # the inbound transaction: RAD-160 | RAD-69 | RAD-75
    resource: str = "none"  # routing.rad160.ResourceKind value, or none
    home_community_id: str | None = None
    retrieve_location_uid: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uid: str | None = None
    status: int = 0  # to the client
    bytes_sent: int = 0  # body bytes to the client
    first_byte_s: float | None = None
    duration_s: float | None = None
    outcome: Outcome = Outcome.FAILED
    error: str | None = None  # a bounded reason, never an upstream message
    legs: list[Leg] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # of the request itself, not a leg's
    instances: InstanceTally = field(default_factory=InstanceTally)
    documents: list[DocumentOutcome] = field(default_factory=list)  # SOAP retrieves only
    client_subject: str | None = None  # its TLS client certificate subject, when verified
    # The gateway's own id of this exchange when ``request_id`` is the client's (which other
    # exchanges may share: a retry, a careless client); None when ``request_id`` is our own.
    exchange_id: str | None = None
    sealed: bool = False  # handed to the sinks; nothing may change it afterwards

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mark_first_byte(self) -> None:
        if self.first_byte_s is None:
            self.first_byte_s = self.elapsed()

    def finish(self) -> None:
        self.duration_s = self.elapsed()

    def open_leg(self, upstream: str) -> Leg:
        """Start recording a conversation with ``upstream`` (a configured upstream's name)."""
        leg = Leg(upstream=upstream, started_s=self.elapsed())
        self.legs.append(leg)
        return leg

    def note_instance(self, identity: InstanceSeen) -> None:
        """Count one relayed instance (the study of the request path stands in for a header
        without one)."""
        self.instances.note(identity, default_study=self.study_uid)

    @property
    def leg(self) -> Leg | None:
        """The latest leg, or None before any upstream was chosen."""
        return self.legs[-1] if self.legs else None

    @property
    def contacted(self) -> bool:
        """Whether a request to an upstream was started (some leg has a URL)."""
        return any(leg.url is not None for leg in self.legs)


class ExchangeSink(Protocol):
    """Receives each finished exchange exactly once. Must return quickly and never raise."""

    def observe(self, exchange: Exchange) -> None: ...


class LegSink(Protocol):
    """Told when a leg's answer is about to reach the client, before its first byte."""

    def answered(self, exchange: Exchange, leg: Leg) -> None: ...


class Telemetry(Protocol):
    """Where a relay hands its records; the handler passes it down (nothing below reads
    application state)."""

    def answered(self, exchange: Exchange, leg: Leg) -> None:
        """``leg``'s answer is about to be relayed: marks its first byte (and the exchange's,
        if first) and tells the leg sinks, before any byte of it is written."""

    def seal(self, exchange: Exchange) -> None:
        """The exchange is over: hand it to every sink — once; later calls do nothing."""
