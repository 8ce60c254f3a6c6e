"""One configuration file, every section of it, read once and checked whole.

The routing sections are :mod:`routing.loader`'s; ``server`` is :mod:`gateway.settings`'s and
``audit`` :mod:`gateway.audit.settings`'s. :func:`load_all` reads the file with the position
of every key (:mod:`routing.positions`), so each problem carries its line and column, and
gives a :class:`Loaded` — or :class:`~routing.errors.ConfigError` with every problem of
every section.

Audit paths that are relative are relative to the state directory
(``server.state_directory``), so two gateways with their own state directories never share a
journal or an audit file, wherever they were started from (:func:`resolve_state`). With
several workers each one has its own journal (:func:`for_worker`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gateway.audit.settings import AuditSettings, DestinationSettings, parse_audit_settings
from gateway.settings import ServerSettings, parse_server_settings
from routing.errors import ConfigError, ConfigProblem
from routing.loader import parse_config
from routing.model import Config
from routing.positions import load_positioned, locate

__all__ = ["SECTIONS", "Loaded", "for_worker", "load_all", "resolve_state", "worker_journal"]

SECTIONS: dict[str, type] = {"server": ServerSettings, "audit": AuditSettings}
"""The sections of a configuration file that gateway packages own, beside the routing ones."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """Everything one configuration file configures, and which file it was (its SHA-256)."""

    config: Config
    server: ServerSettings
    audit: AuditSettings
    path: str = ""
    sha256: str = ""
    positions: Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)


def load_all(path: str) -> Loaded:
    """Every section of one file, relative audit paths under the state directory.

    Raises :class:`ConfigError` listing every problem of all sections, each located.
    """
    document, positions = load_positioned(path)
    problems: list[ConfigProblem] = []

    def read(parse: Callable[..., T]) -> T | None:
        try:
            return parse(document, source=path)
        except ConfigError as exc:
            problems.extend(locate(problem, positions) for problem in exc.problems)
            return None

    config = read(functools.partial(parse_config, foreign_sections=SECTIONS.keys()))
    server = read(parse_server_settings)
    audit = read(parse_audit_settings)
    if problems or config is None or server is None or audit is None:
        raise ConfigError(problems, path)
    return Loaded(
        config=config,
        server=server,
        audit=resolve_state(audit, server),
        path=path,
        sha256=file_digest(path),
        positions=positions,
    )


def file_digest(path: str) -> str:
    """The SHA-256 of the file's bytes, in hex (empty when it cannot be read)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def resolve_state(audit: AuditSettings, server: ServerSettings) -> AuditSettings:
    """``audit`` with its relative paths made relative to the state directory."""
    state = server.state_path

    def under(path: str) -> str:
        return path if Path(path).is_absolute() else str(state / path)

    def destination(d: DestinationSettings) -> DestinationSettings:
        if d.file is None:
            return d
        return dataclasses.replace(d, file=dataclasses.replace(d.file, path=under(d.file.path)))

    destinations = tuple(destination(d) for d in audit.destinations)
    return dataclasses.replace(
        audit,
        destinations=destinations,
        file=dataclasses.replace(audit.file, path=under(audit.file.path)),
        journal=dataclasses.replace(audit.journal, directory=under(audit.journal.directory)),
    )


def worker_journal(directory: str, index: int) -> str:
    """Worker ``index``'s journal: the configured directory for the first, ``{dir}-{index}``
    beside it for the others (so going from one worker to several keeps the first journal)."""
    return directory if index == 0 else f"{directory.rstrip('/')}-{index}"


def for_worker(audit: AuditSettings, index: int) -> AuditSettings:
    """``audit`` for worker ``index``: its own journal; the audit files are shared (each
    worker appends whole lines, ``O_APPEND``)."""
    journal = dataclasses.replace(
        audit.journal, directory=worker_journal(audit.journal.directory, index)
    )
    return dataclasses.replace(audit, journal=journal)


def summary(loaded: Loaded) -> dict[str, Any]:
    """What the start line and ``check-config`` say about a file."""
    config = loaded.config
    return {
        "home_community_id": str(config.identity.home_community_id),
        "upstreams": len(config.upstreams),
        "communities": len(config.communities),
        "sources": len(config.sources),
        "location_aliases": len(config.location_aliases),
    }
