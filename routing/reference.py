"""A whole configuration file described from its declarations: JSON Schema and Markdown.

A file is one mapping: the sections of a root class at the top level (``self``,
``upstreams``, … from :class:`routing.model.Config`) and sections other packages own
(``server``, ``audit``), each a declared dataclass (:mod:`routing.declare`). Both outputs are
generated, never written by hand, so they say what the loader reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from routing.declare import (
    FAILED,
    default_of,
    refused_keys,
    section_doc,
    section_schema,
    settings_of,
)

__all__ = ["document_schema", "reference_markdown"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"


def document_schema(
    root: type, sections: Mapping[str, type], *, title: str, description: str
) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a file: ``root``'s keys and the ``sections``."""
    schema = {**section_schema(root), "description": description}
    for key, cls in sections.items():
        section = section_schema(cls)
        section["type"] = ["object", "null"]  # absent or null: every default
        schema["properties"][key] = section
    return {"$schema": DRAFT, "title": title, **schema}


def reference_markdown(root: type, sections: Mapping[str, type], *, title: str, intro: str) -> str:
    """The reference: one table a section, in the order a file is read, nested ones after
    the section that holds them."""
    out = [f"# {title}", "", intro.strip(), ""]
    rows = [_row(key, "section", "see below", section_doc(cls)) for key, cls in sections.items()]
    places = [("", root), *sections.items()]
    for path, cls in places:
        for where, section, base in _walk(path, cls, None):
            out += _section(where, section, base, rows if section is root else [])
    return "\n".join(out).rstrip("\n") + "\n"


def _walk(path: str, cls: type, base: object) -> Iterator[tuple[str, type, object]]:
    yield path, cls, base
    for key, field, declared in settings_of(cls):
        default = default_of(field, base)
        inner = f"{path}.{key}" if path else key
        for suffix, nested, nested_base in declared.kind.nested(default):
            yield from _walk(inner + suffix, nested, nested_base)


def _section(path: str, cls: type, base: object, rows: list[str]) -> list[str]:
    heading = f"`{path}`" if path else "Top level"
    lines = [f"## {heading}", "", _markup(section_doc(cls)), ""]
    lines += ["| Key | Type | Default | Description |", "| --- | --- | --- | --- |"]
    for key, field, declared in settings_of(cls):
        default = default_of(field, base)
        if declared.required:
            shown = "required"
        elif declared.inherit is not None:
            shown = f"the top-level `{declared.inherit}`"
        elif declared.shown is not None:
            shown = declared.shown
        else:
            shown = _value(default, bool(declared.kind.nested(default)))
        lines.append(_row(key, declared.kind.label, shown, declared.doc))
    lines += rows
    refused = refused_keys(cls)
    if refused:
        lines += ["", "Refused:", ""]
        lines += [f"- `{key}` {reason}." for key, reason in refused.items()]
    lines.append("")
    return lines


def _row(key: str, label: str, default: str, doc: str) -> str:
    return f"| `{key}` | {label} | {default} | {_markup(doc)} |"


def _value(value: object, section: bool) -> str:
    if value is None or value is FAILED:
        return "none"
    if section:
        return "see below"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float):
        return f"`{value:g}`"
    if isinstance(value, dict):
        return "`{}`" if not value else "see below"
    if isinstance(value, tuple | frozenset | list):
        return "`[]`" if not value else "see below"
    return f"`{value}`"


def _markup(text: str) -> str:
    """reStructuredText inline markup as Markdown: ``x`` and :role:`x` become `x`."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`").replace("|", "\\|")
