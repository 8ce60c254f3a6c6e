"""Configuration declared once per field, and the one reader that builds it from a document.

A section of a configuration file is a frozen, slotted, keyword-only dataclass. Every field a
document may set is made with :func:`setting`: its :class:`Kind` (what is written there and
how it is checked, from :mod:`routing.kinds`), one sentence for the operator, its default (or
``required``) and, when it differs from the field name, its document ``key``. From that one
declaration:

* :func:`read` builds the dataclass from a parsed document, recording every problem with its
  field path (``upstreams.pacs-a.base_urls[1]``) and raising :class:`ConfigError` with all of
  them; a key nobody declared is a problem too (almost always a typo);
* :func:`section_schema` gives its JSON Schema (draft 2020-12), and :mod:`routing.reference`
  the Markdown reference.

A section class may also define ``REFUSED_KEYS`` (key -> why it is refused, for keys an
operator may expect, such as ``total_s``) and ``finish(self, report: Report) -> object``: its
cross-field checks, run once its own fields are read. ``finish`` returns the value to use:
``self``, a replacement (of another type when the section is only the written form of a
value, as ``auth`` is of a credential) or :data:`FAILED`.

Absent and ``null`` are the same: the default. A field whose value has a problem takes its
default, so that reading goes on and every problem is found; a section missing a required
field is :data:`FAILED`, and so is every section that requires it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any, Final, Protocol, TypeVar, cast

from routing.errors import ConfigError, ConfigProblem
from routing.fields import type_name

__all__ = [
    "FAILED",
    "Kind",
    "Reader",
    "Report",
    "Setting",
    "child_path",
    "default_of",
    "read",
    "refused_keys",
    "section_doc",
    "section_schema",
    "setting",
    "settings_of",
]

T = TypeVar("T")


class _Failed:
    __slots__ = ()

    def __repr__(self) -> str:
        return "FAILED"


FAILED: Final[object] = _Failed()
"""What a kind or a section gives when nothing usable is left (its problems are recorded)."""

_MISSING: Final[Any] = dataclasses.MISSING
_KEY = "mado-gateway.setting"


class Kind(Protocol):
    """What one value of a document is: how it is read, checked and described.

    ``default`` is the field's default: the base of a nested section's own defaults.
    """

    @property
    def label(self) -> str:
        """The type column of the reference: ``number``, ``list of URL``, ``section``."""
        ...

    def read(self, value: object, path: str, reader: Reader, default: object) -> object:
        """The value to use. Raises ``ValueError(reason)`` for a problem with ``value`` as a
        whole; a kind made of parts records their problems through ``reader`` and returns
        :data:`FAILED` when nothing usable is left."""
        ...

    def schema(self, default: object) -> dict[str, Any]:
        """JSON Schema of the value."""
        ...

    def nested(self, default: object) -> tuple[tuple[str, type, object], ...]:
        """The sections inside, for the reference: (path suffix, class, base of defaults)."""
        ...


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Setting:
    """The declaration of one field: see :func:`setting`."""

    kind: Kind
    doc: str
    key: str | None = None
    required: bool = False
    inherit: str | None = None
    shown: str | None = None


def setting(
    kind: Kind,
    doc: str,
    *,
    default: object = _MISSING,
    factory: Callable[[], object] = _MISSING,
    key: str | None = None,
    required: bool = False,
    inherit: str | None = None,
    shown: str | None = None,
) -> Any:
    """A dataclass field that a document sets.

    ``inherit``: when absent, the value of that top-level field instead of the default (an
    upstream's ``address_policy``); the top-level field must be declared first. ``shown``:
    how the reference writes a default that is not a plain value.
    """
    declared = Setting(kind=kind, doc=doc, key=key, required=required, inherit=inherit, shown=shown)
    given: dict[str, Any] = {}
    if default is not _MISSING:
        given["default"] = default
    if factory is not _MISSING:
        given["default_factory"] = factory
    return dataclasses.field(metadata={_KEY: declared}, **given)


@functools.cache
def settings_of(cls: type) -> tuple[tuple[str, dataclasses.Field[Any], Setting], ...]:
    """``(document key, field, declaration)`` for each declared field, in declaration order."""
    return tuple(
        (declared.key or field.name, field, declared)
        for field in dataclasses.fields(cls)
        if (declared := field.metadata.get(_KEY)) is not None
    )


def refused_keys(cls: type) -> Mapping[str, str]:
    """The keys a section refuses, each with the reason (``REFUSED_KEYS``)."""
    return cast(Mapping[str, str], getattr(cls, "REFUSED_KEYS", {}))


def default_of(field: dataclasses.Field[Any], base: object) -> object:
    """The field's value in ``base`` (a default instance of its section), else its own
    default; ``dataclasses.MISSING`` for a required field."""
    if base is not None and base is not FAILED and base is not _MISSING:
        return getattr(base, field.name)
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return _MISSING


def child_path(path: str, key: str) -> str:
    if not key:
        return path
    return f"{path}.{key}" if path else key


class Reader:
    """One reading of one document: the problems found so far and the top-level values."""

    def __init__(self) -> None:
        self.problems: list[ConfigProblem] = []
        self.scope: dict[str, object] = {}  # top-level field -> value, for inherit and names

    def problem(self, path: str, reason: str) -> None:
        self.problems.append(ConfigProblem(path=path, reason=reason))

    def failed(self, path: str) -> bool:
        """Whether a problem was recorded at ``path`` or inside it."""
        return any(
            p.path == path or p.path.startswith((f"{path}.", f"{path}[")) for p in self.problems
        )

    def value(self, kind: Kind, value: object, path: str, default: object = None) -> object:
        """``kind`` read from ``value``; :data:`FAILED` (problem recorded) when it is unusable."""
        try:
            return kind.read(value, path, self, default)
        except ValueError as exc:
            self.problem(path, str(exc))
            return FAILED

    def section(
        self,
        cls: type,
        value: object,
        path: str,
        *,
        base: object = None,
        fixed: Mapping[str, object] | None = None,
        known: Collection[str] = (),
    ) -> object:
        """Build ``cls`` from the mapping ``value`` (None: empty). ``base`` gives the defaults,
        ``fixed`` the fields a document does not write (an upstream's name, its key),
        ``known`` the keys other readers own."""
        written = {} if value is None else value
        if not isinstance(written, Mapping):
            self.problem(path, f"must be a mapping, not {type_name(written)}")
            return FAILED
        values = dict(fixed or {})
        complete = True
        for key, field, declared in settings_of(cls):
            where = child_path(path, key)
            raw = written.get(key)
            default = default_of(field, base)
            result = FAILED if raw is None else self.value(declared.kind, raw, where, default)
            if result is FAILED:
                if raw is None and declared.inherit is not None:
                    default = self.scope[declared.inherit]
                if default is _MISSING:
                    if raw is None:
                        self.problem(where, "is required")
                    complete = False
                    continue
                result = default
            values[field.name] = result
            if not path:
                self.scope[field.name] = result
        declared_keys = {key for key, _, _ in settings_of(cls)}
        refused = refused_keys(cls)
        for key in written:
            if key in refused:
                self.problem(child_path(path, str(key)), refused[key])
            elif key not in declared_keys and key not in known:
                self.problem(child_path(path, str(key)), "unknown field")
        if not complete:
            return FAILED
        made = cls(**values)
        finish: Callable[[Report], object] | None = getattr(made, "finish", None)
        return made if finish is None else finish(Report(self, path, written))


class Report:
    """What a section's ``finish`` sees besides its values: where it is, what was written."""

    def __init__(self, reader: Reader, path: str, written: Mapping[Any, object]) -> None:
        self._reader = reader
        self._written = written
        self.path = path

    def problem(self, key: str, reason: str) -> None:
        """Record a problem at ``key`` (a relative path; ``""``: the section itself)."""
        self._reader.problem(child_path(self.path, key), reason)

    def failed(self, key: str = "") -> bool:
        """Whether a problem was recorded at ``key`` or inside it."""
        return self._reader.failed(child_path(self.path, key))

    def given(self, key: str) -> bool:
        """Whether the document wrote ``key`` (with a value other than null)."""
        return self._written.get(key) is not None


def read(cls: type[T], value: object, path: str, *, source: str, known: Collection[str] = ()) -> T:
    """Build ``cls`` from ``value``, the part of a document at ``path``.

    Raises :class:`ConfigError` naming ``source`` with every problem found.
    """
    reader = Reader()
    made = reader.section(cls, value, path, known=known)
    if reader.problems or made is FAILED:
        raise ConfigError(reader.problems, source)
    return cast(T, made)


def section_doc(cls: type) -> str:
    """The first paragraph of the section's docstring, on one line."""
    text = (cls.__doc__ or "").strip().split("\n\n", 1)[0]
    return " ".join(text.split())


def section_schema(cls: type, base: object = None) -> dict[str, Any]:
    """The JSON Schema of a section: its declared keys and nothing else."""
    properties: dict[str, Any] = {}
    required = []
    for key, field, declared in settings_of(cls):
        default = default_of(field, base)
        schema = {"description": declared.doc, **declared.kind.schema(default)}
        if declared.required:
            required.append(key)
        else:
            schema = _nullable(schema)
            if _plain(default):
                schema["default"] = _plain_value(default)
        properties[key] = schema
    out: dict[str, Any] = {
        "type": "object",
        "description": section_doc(cls),
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """Null is accepted wherever a value may be left out: it means the default."""
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"description": schema.pop("description"), "anyOf": [schema, {"type": "null"}]}


def _plain(value: object) -> bool:
    if isinstance(value, tuple | frozenset | list):
        return not value
    return isinstance(value, str | int | float | bool)


def _plain_value(value: object) -> object:
    return [] if isinstance(value, tuple | frozenset | list) else value
