"""Holding the current registry, and swapping it whole on reload.

The registry itself is immutable; the holder is the one mutable cell. A reload reads the
file, validates it completely and builds a new :class:`~routing.registry.Registry` before
anything changes, then swaps the reference in one assignment. Requests already running keep
the registry they started with. A file with any problem changes nothing: the old registry
keeps serving, the problems are logged, and ``registry_last_reload_successful`` drops to 0.
Every section of the file is validated, but only the routing takes effect: ``server`` and
``audit`` settings are read at start, so changing them needs a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from routing.errors import ConfigError
from routing.loader import load_config
from routing.model import Config
from routing.registry import Registry

__all__ = ["RegistryHolder"]

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
            log.error(
                "configuration reload rejected; still serving generation %d",
                self.generation,
                extra={"problems": [str(p) for p in exc.problems], "source": exc.source},
            )
            self._notify(ok=False)
            return False
        self.registry = registry
        self.generation += 1
        log.info("configuration reloaded", extra={"generation": self.generation})
        self._notify(ok=True)
        return True

    def _notify(self, *, ok: bool) -> None:
        for listener in self._listeners:
            listener(ok, self.registry)
