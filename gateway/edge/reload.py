"""Holding what a reload may change: the registry, and the server settings in force.

The registry itself is immutable; :class:`RegistryHolder` is the one mutable cell. A reload
reads the file, validates it completely and builds a new :class:`~routing.registry.Registry`
before anything changes, then swaps the reference in one assignment. Requests already running
keep the registry they started with. A file with any problem changes nothing: the old
registry keeps serving, the problems are logged, and ``registry_last_reload_successful``
drops to 0.

:class:`LiveSettings` holds the ``server`` section in force. A reload applies the fields of
:data:`RELOADABLE` (the TLS certificate and key, the log level, limits, CORS, rate limits,
the public URL, the drain time) and names every other field that changed as needing a
restart (the listen addresses, the workers, the state directory, the paths of the routes).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable

from gateway.settings import ServerSettings
from routing.errors import ConfigError
from routing.loader import load_config
from routing.model import Config
from routing.registry import Registry

__all__ = ["RELOADABLE", "Applied", "LiveSettings", "RegistryHolder"]

log = logging.getLogger("mado_gateway.reload")


class RegistryHolder:
    """The current registry, and the file it came from."""

    def __init__(
        self,
        registry: Registry,
        path: str | os.PathLike[str] | None = None,
        *,
        load: Callable[[str], Config] | None = None,
    ) -> None:
        """``load`` reads and validates the file (default: its routing sections only); the
        command line passes one that validates every section, so a reload never accepts a
        file that a restart would refuse."""
        self.registry = registry
        self.path = path
        self._load = load or load_config
        self.generation = 1
        self._listeners: list[Callable[[bool, Registry], None]] = []

    def subscribe(self, listener: Callable[[bool, Registry], None]) -> None:
        """Call ``listener(ok, current_registry)`` after every reload attempt."""
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Re-read the file: True when the new registry is in place, False if the old one stays."""
        if self.path is None:
            return False
        try:
            registry = Registry(self._load(str(self.path)))
        except ConfigError as exc:
            self.reject(exc)
            return False
        self.swap(registry)
        log.info("configuration reloaded", extra={"generation": self.generation})
        return True

    def reject(self, exc: ConfigError) -> None:
        """A reload found ``exc``'s problems: log them, keep the registry, tell listeners."""
        log.error(
            "configuration reload rejected; still serving generation %d",
            self.generation,
            extra={"problems": [str(p) for p in exc.problems], "source": exc.source},
        )
        self._notify(ok=False)

    def swap(self, registry: Registry) -> None:
        """Put ``registry`` in force (one assignment) and tell listeners."""
        self.registry = registry
        self.generation += 1
        self._notify(ok=True)

    def _notify(self, *, ok: bool) -> None:
        for listener in self._listeners:
            listener(ok, self.registry)


RELOADABLE = (
    "public_url",
    "log_level",
    "tls",
    "limits",
    "cors",
    "rate_limit",
    "peer_gateways",
    "drain_s",
)
"""The ``server`` fields a reload applies; a change to any other needs a restart."""


@dataclasses.dataclass(frozen=True, slots=True)
class Applied:
    """What a reload of the ``server`` section did: the fields it applied and those whose
    change needs a restart (each a field path such as ``server.port``)."""

    applied: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()


class LiveSettings:
    """The ``server`` settings in force; ``current`` is read per request, never kept."""

    def __init__(self, settings: ServerSettings) -> None:
        self.started = settings
        self.current = settings
        self._listeners: list[Callable[[ServerSettings, Applied], None]] = []

    def subscribe(self, listener: Callable[[ServerSettings, Applied], None]) -> None:
        """Call ``listener(settings, applied)`` after every :meth:`apply` that changed some."""
        self._listeners.append(listener)

    def apply(self, new: ServerSettings) -> Applied:
        """Take the reloadable fields of ``new``; name the others that differ (a restart
        applies them). A TLS section added or removed is a restart; aiohttp's parser limits
        are fixed at start at twice the inbound limits, so a limit raised past them is named
        too (it is applied up to the parser's)."""
        current = self.current
        changed = [
            field.name
            for field in dataclasses.fields(ServerSettings)
            if getattr(new, field.name) != getattr(current, field.name)
        ]
        applied = [name for name in changed if name in RELOADABLE]
        if "tls" in applied and (new.tls is None) != (self.started.tls is None):
            applied.remove("tls")
        restart = [name for name in changed if name not in applied]
        if "limits" in applied and _past_parser(new, self.started):
            restart.append("limits")
        if applied:
            self.current = dataclasses.replace(
                current, **{name: getattr(new, name) for name in applied}
            )
        result = Applied(
            applied=tuple(f"server.{name}" for name in applied),
            restart=tuple(f"server.{name}" for name in restart),
        )
        if applied:
            for listener in self._listeners:
                listener(self.current, result)
        return result


def _past_parser(new: ServerSettings, started: ServerSettings) -> bool:
    limits, first = new.limits, started.limits
    return (
        limits.max_url_bytes > 2 * first.max_url_bytes
        or limits.max_header_bytes > 2 * first.max_header_bytes
        or limits.max_headers > max(128, 2 * first.max_headers)
    )
