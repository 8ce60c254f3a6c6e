"""Reading configuration documents: YAML or JSON files, and typed fields with their paths.

:func:`load_document` reads a file into a mapping; :class:`Fields` reads one mapping of it,
recording every problem with its field path (``upstreams.pacs-a.base_urls[1]``) instead of
raising, and reports fields nobody read (almost always a typo). Every section reader —
routing here, ``server`` and ``audit`` in the gateway — uses it, so an operator gets one list
of every problem in a file, each named the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from routing.errors import ConfigError, ConfigProblem

__all__ = ["Fields", "first_line", "load_document", "type_name"]


class Fields:
    """Typed reads from one mapping of a document; problems are recorded, never raised."""

    def __init__(self, value: object, path: str, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        self.valid = isinstance(value, Mapping)
        if value is not None and not self.valid:
            self.problem("", f"must be a mapping, not {type_name(value)}")
        self._data: Mapping[str, Any] = value if isinstance(value, Mapping) else {}
        self._seen: set[str] = set()

    def problem(self, key: str, reason: str) -> None:
        self.problems.append(ConfigProblem(path=self.child_path(key), reason=reason))

    def child_path(self, key: str) -> str:
        if not key:
            return self.path
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str) -> object:
        self._seen.add(key)
        return self._data.get(key)

    def has(self, key: str) -> bool:
        return key in self._data

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.raw(key)
        if value is None:
            if required:
                self.problem(key, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem(key, "must be a non-empty string")
            return default
        return value.strip()

    def number(self, key: str, default: float, *, positive: bool = True) -> float:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"must be a number, not {type_name(value)}")
            return default
        if positive and value <= 0:
            self.problem(key, "must be greater than 0")
            return default
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(key, f"must be a whole number, not {type_name(value)}")
            return default
        if value < minimum:
            self.problem(key, f"must be at least {minimum}")
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, "must be true or false")
            return default
        return value

    def strings(self, key: str) -> list[tuple[str, str]]:
        """A list of strings, each paired with its own field path."""
        value = self.raw(key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.problem(key, "must be a list of strings")
            return []
        out = []
        for index, item in enumerate(value):
            path = f"{self.child_path(key)}[{index}]"
            if isinstance(item, str) and item.strip():
                out.append((path, item.strip()))
            else:
                self.problems.append(ConfigProblem(path=path, reason="must be a non-empty string"))
        return out

    def section(self, key: str) -> Fields:
        return Fields(self.raw(key), self.child_path(key), self.problems)

    def entries(self, key: str) -> Iterator[tuple[str, str, object]]:
        """``(name, path, value)`` for each entry of a named mapping (``upstreams: {a: …}``)."""
        value = self.raw(key)
        if value is None:
            return
        if not isinstance(value, Mapping):
            self.problem(key, "must be a mapping")
            return
        for name, item in value.items():
            yield str(name), f"{self.child_path(key)}.{name}", item

    def finish(self, also_known: Collection[str] = ()) -> None:
        """Report every field that nobody read: almost always a typo."""
        for key in self._data:
            if key not in self._seen and key not in also_known:
                self.problem(str(key), "unknown field")


def load_document(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Read a YAML or JSON file into a mapping. Raises :class:`ConfigError` naming the file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(path="", reason=exc.strerror or str(exc))], source
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigProblem(path="", reason="not UTF-8 text")], source) from None
    try:
        document = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        reason = f"cannot be parsed: {first_line(exc)}"
        raise ConfigError([ConfigProblem(path="", reason=reason)], source) from None
    if not isinstance(document, Mapping):
        reason = f"must be a mapping at the top level, not {type_name(document)}"
        raise ConfigError([ConfigProblem(path="", reason=reason)], source)
    return document


def type_name(value: object) -> str:
    names: dict[type, str] = {list: "a list", dict: "a mapping", str: "a string"}
    return names.get(type(value), type(value).__name__)


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
