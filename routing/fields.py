"""Reading configuration documents: a YAML or JSON file into one mapping.

What the mapping holds is read against the declarations of :mod:`routing.declare`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from routing.positions import load_positioned

__all__ = ["first_line", "load_document", "type_name"]


def load_document(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Read a YAML or JSON file into a mapping. Raises :class:`ConfigError` naming the file,
    also for a key written twice (:func:`routing.positions.load_positioned`)."""
    return load_positioned(path)[0]


def type_name(value: object) -> str:
    names: dict[type, str] = {list: "a list", dict: "a mapping", str: "a string"}
    return names.get(type(value), type(value).__name__)


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
