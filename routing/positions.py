"""A configuration file read with where each key is: line and column for every problem.

:func:`load_positioned` parses YAML (or JSON, by the ``.json`` suffix) into the mapping the
declarations read (:mod:`routing.declare`) and a :class:`Positions` index from field paths
(``upstreams.pacs-a.base_urls[0]``, the paths problems name) to 1-based line and column.
Refused before any field is read, every one reported:

* a syntax error, with the line and column the parser stopped at;
* a key written twice in one mapping (YAML 1.2 §3.2.1.1 and RFC 8259 §4 leave it to the
  reader; PyYAML and ``json`` keep the last silently, so the first would be ignored unseen);
  YAML merge keys (``<<``) are not duplicates;
* a document that is not one mapping.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from routing.errors import ConfigError, ConfigProblem

__all__ = ["Positions", "load_positioned", "locate"]

Positions = Mapping[str, tuple[int, int]]
"""Field path → (line, column), both counted from 1."""


def load_positioned(path: str | os.PathLike[str]) -> tuple[Mapping[str, Any], Positions]:
    """The document of the file at ``path`` and where its keys are.

    Raises :class:`ConfigError` naming the file with every problem of the module docstring.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([_problem(exc.strerror or str(exc))], source) from None
    except UnicodeDecodeError:
        raise ConfigError([_problem("not UTF-8 text")], source) from None
    positions: dict[str, tuple[int, int]] = {}
    if source.endswith(".json"):
        document = _json(text, source)
    else:
        document, positions = _yaml(text, source)
    if not isinstance(document, Mapping):
        names = {list: "a list", str: "a string", type(None): "empty"}
        shown = names.get(type(document), type(document).__name__)
        raise ConfigError([_problem(f"must be a mapping at the top level, not {shown}")], source)
    return document, positions


def locate(problem: ConfigProblem, positions: Positions) -> ConfigProblem:
    """``problem`` with the line and column of its path, or of the nearest enclosing key
    written in the file (a required key that is missing: the section that lacks it)."""
    if problem.line is not None:
        return problem
    path = problem.path
    while path:
        if path in positions:
            line, column = positions[path]
            return ConfigProblem(path=problem.path, reason=problem.reason, line=line, column=column)
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return problem


def _problem(reason: str, line: int | None = None, column: int | None = None) -> ConfigProblem:
    return ConfigProblem(path="", reason=reason, line=line, column=column)


def _yaml(text: str, source: str) -> tuple[object, dict[str, tuple[int, int]]]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "cannot be parsed"
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise ConfigError([_problem(f"cannot be parsed: {what}", line, column)], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([_problem(f"cannot be parsed: {_first_line(exc)}")], source) from None
    positions: dict[str, tuple[int, int]] = {}
    problems: list[ConfigProblem] = []
    if root is not None:
        _walk(root, "", positions, problems)
    if problems:
        raise ConfigError(problems, source)
    return document, positions


def _walk(
    node: yaml.Node,
    path: str,
    positions: dict[str, tuple[int, int]],
    problems: list[ConfigProblem],
) -> None:
    if isinstance(node, yaml.MappingNode):
        first: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            where = f"{path}.{key}" if path else key
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in first:
                reason = (
                    f"duplicate key (first at line {first[key][0]}): the second would "
                    "silently replace the first"
                )
                problems.append(ConfigProblem(path=where, reason=reason, line=at[0], column=at[1]))
                continue
            first[key] = at
            positions[where] = at
            _walk(value_node, where, positions, problems)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            where = f"{path}[{index}]"
            positions[where] = (item.start_mark.line + 1, item.start_mark.column + 1)
            _walk(item, where, positions, problems)


def _json(text: str, source: str) -> object:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                duplicates.append(key)
            out[key] = value
        return out

    try:
        document = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as exc:
        problem = _problem(f"cannot be parsed: {exc.msg}", exc.lineno, exc.colno)
        raise ConfigError([problem], source) from None
    if duplicates:
        problems = [
            _problem(f"duplicate key {key!r}: the second would silently replace the first")
            for key in duplicates
        ]
        raise ConfigError(problems, source)
    return document


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
