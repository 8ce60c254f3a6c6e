"""Reading configuration documents: a YAML or JSON file into one mapping.

What the mapping holds is read against the declarations of :mod:`routing.declare`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from routing.errors import ConfigError, ConfigProblem

__all__ = ["first_line", "load_document", "type_name"]


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
