"""The kinds of value a configuration field declares (:class:`routing.declare.Kind`).

Each kind reads a value of a parsed document, raising ``ValueError`` with the reason an
operator reads after the field path, and describes itself as JSON Schema. Strings are trimmed;
a ``convert`` callable turns the text into its value type (an OID, an origin, a network) and
raises ``ValueError`` with the reason when it cannot.
"""

from __future__ import annotations

import enum
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from routing.declare import FAILED, Kind, Reader, section_schema
from routing.fields import type_name

__all__ = [
    "EXISTING_FILE",
    "Choice",
    "Flag",
    "Integer",
    "ListOf",
    "Map",
    "Number",
    "Section",
    "Text",
    "existing_file",
    "with_text",
]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Text:
    """A non-empty string, trimmed. ``pattern`` (a full match) is checked first and fails
    with ``reason``; ``like`` is a pattern for the schema alone, where ``convert`` checks."""

    label: str = "string"
    pattern: str | None = None
    reason: str = ""
    convert: Callable[[str], Any] | None = None
    like: str | None = None
    expected: str = "must be a non-empty string"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(self.expected)
        text = value.strip()
        if self.pattern is not None and re.fullmatch(self.pattern, text) is None:
            raise ValueError(self.reason)
        return text if self.convert is None else self.convert(text)

    def schema(self, default: object) -> dict[str, Any]:
        pattern = self.pattern or self.like
        if pattern is None:
            return {"type": "string", "pattern": r"\S"}
        return {"type": "string", "pattern": rf"^\s*(?:{pattern})\s*$"}

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Number:
    """A finite number, greater than ``minimum`` (or at least it, when not ``exclusive``);
    read as a float."""

    minimum: float = 0
    exclusive: bool = True
    label: str = "number"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, not {type_name(value)}")
        try:
            number = float(value)  # a YAML integer may be past any float
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise ValueError("must be a finite number")
        if self.exclusive and number <= self.minimum:
            raise ValueError(f"must be greater than {self.minimum:g}")
        if not self.exclusive and number < self.minimum:
            at_least = "not be negative" if self.minimum == 0 else f"be at least {self.minimum:g}"
            raise ValueError(f"must {at_least}")
        return number

    def schema(self, default: object) -> dict[str, Any]:
        bound = "exclusiveMinimum" if self.exclusive else "minimum"
        return {"type": "number", bound: self.minimum}

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Integer:
    """A whole number from ``minimum`` to ``maximum``."""

    minimum: int = 1
    maximum: int | None = None
    label: str = "integer"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number, not {type_name(value)}")
        if value < self.minimum:
            raise ValueError(f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ValueError(f"must be at most {self.maximum}")
        return value

    def schema(self, default: object) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Flag:
    """``true`` or ``false``."""

    label: str = "boolean"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value

    def schema(self, default: object) -> dict[str, Any]:
        return {"type": "boolean"}

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Choice:
    """One of ``options``, made into its value by ``make``; with ``fold`` (``str.lower``,
    ``str.upper``) in any letter case."""

    options: tuple[str, ...]
    make: Callable[[str], Any] = str
    fold: Callable[[str], str] | None = None

    @classmethod
    def of(cls, kind: type[enum.StrEnum], fold: Callable[[str], str] | None = None) -> Choice:
        return cls(tuple(member.value for member in kind), make=kind, fold=fold)

    @property
    def label(self) -> str:
        return " \\| ".join(f"`{option}`" for option in self.options)

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("must be a non-empty string")
        text = value.strip() if self.fold is None else self.fold(value.strip())
        if text not in self.options:
            raise ValueError(f"must be one of {', '.join(self.options)}")
        return self.make(text)

    def schema(self, default: object) -> dict[str, Any]:
        spelled = [_any_case(o) if self.fold else re.escape(o) for o in self.options]
        exact = rf"^\s*(?:{'|'.join(spelled)})\s*$"
        return {"type": "string", "anyOf": [{"enum": list(self.options)}, {"pattern": exact}]}

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return ()


def _any_case(text: str) -> str:
    return "".join(
        f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else re.escape(c) for c in text
    )


@dataclass(frozen=True, slots=True)
class Section:
    """A nested section: a mapping read into the declared dataclass ``cls``."""

    cls: type
    label: str = "section"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        return reader.section(self.cls, value, path, base=default)

    def schema(self, default: object) -> dict[str, Any]:
        return section_schema(self.cls, default)

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return (("", self.cls, default),)


@dataclass(frozen=True, slots=True)
class ListOf:
    """A list of ``item`` (for strings, one string alone is a list of one).

    ``unique``: attribute path of an item -> the reason when two items share its value
    (``{!r}`` shows the value); reported at the later item.
    """

    item: Text | Section
    collect: Callable[[Iterable[Any]], Any] = tuple
    min_items: int = 0
    reason: str = "must be a list of strings"
    few: str = ""
    unique: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"list of {self.item.label}"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if isinstance(value, str) and isinstance(self.item, Text):
            value = [value]
        if not isinstance(value, list):
            raise ValueError(self.reason)
        if len(value) < self.min_items:
            raise ValueError(self.few or self.reason)
        out = []
        seen: dict[str, set[object]] = {attribute: set() for attribute in self.unique}
        for index, item in enumerate(value):
            where = f"{path}[{index}]"
            made = reader.value(self.item, item, where)
            if made is FAILED:
                continue
            for attribute, reason in self.unique.items():
                shared = _attribute(made, attribute)
                if shared is not None and shared in seen[attribute]:
                    reader.problem(f"{where}.{attribute}", reason.format(shared))
                seen[attribute].add(shared)
            out.append(made)
        if len(out) < self.min_items:
            return FAILED  # each item's problem is recorded
        return self.collect(out)

    def schema(self, default: object) -> dict[str, Any]:
        items = self.item.schema(None)
        listed = {"type": "array", "items": items, "minItems": self.min_items}
        if isinstance(self.item, Text):
            return {"anyOf": [items, listed]}
        return listed

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return tuple(("[]", cls, base) for _, cls, base in self.item.nested(None))


def _attribute(value: object, dotted: str) -> object:
    for name in dotted.split("."):
        value = getattr(value, name, None)
    return value


@dataclass(frozen=True, slots=True)
class Map:
    """A mapping of names to ``value`` (``upstreams``, ``sources``). ``key`` reads each name
    (its problems are reported at the entry); ``into`` names the field of a section value
    that receives the name; ``show`` writes a key in the "duplicates" problem."""

    value: Kind
    key: Text = field(default_factory=Text)
    into: str | None = None
    min_items: int = 0
    noun: str = "entry"
    show: Callable[[Any], str] = str

    @property
    def label(self) -> str:
        return f"mapping of {self.key.label} to {self.value.label}"

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        if not isinstance(value, Mapping):
            raise ValueError(f"must be a mapping, not {type_name(value)}")
        if len(value) < self.min_items:
            raise ValueError(f"must name at least one {self.noun}")
        out: dict[object, object] = {}
        for name, item in value.items():
            where = f"{path}.{name}"
            key = reader.value(self.key, str(name), where)
            if self.into is not None and isinstance(self.value, Section):
                fixed = {self.into: str(name) if key is FAILED else key}
                made = reader.section(self.value.cls, item, where, fixed=fixed)
            else:
                made = reader.value(self.value, item, where)
            if key is FAILED or made is FAILED:
                continue
            if key in out:
                reader.problem(where, f"duplicates {self.show(key)} (another spelling)")
                continue
            out[key] = made
        return out

    def schema(self, default: object) -> dict[str, Any]:
        return {
            "type": "object",
            "propertyNames": self.key.schema(None),
            "additionalProperties": self.value.schema(None),
            "minProperties": self.min_items,
        }

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        return tuple((f".<{self.key.label}>", cls, b) for _, cls, b in self.value.nested(None))


def existing_file(path: str) -> str:
    """A path that names an existing file (checked when the configuration is loaded)."""
    if not os.path.isfile(path):
        raise ValueError(f"file {path!r} does not exist")
    return path


EXISTING_FILE = Text(label="file path", convert=existing_file)


def with_text(convert: Callable[[str], R], template: str) -> Callable[[str], R]:
    """``convert`` whose reason is written by ``template`` (``{text!r}``, ``{reason}``)."""

    def converted(text: str) -> R:
        try:
            return convert(text)
        except ValueError as exc:
            raise ValueError(template.format(text=text, reason=exc)) from None

    return converted
