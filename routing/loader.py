"""The routing sections of a configuration document to :class:`~routing.model.Config`.

Every problem is collected, not just the first, and each names its field path
(``upstreams.pacs-a.base_urls[1]``) and the reason, so an operator fixes a file in one pass.
Unknown fields are problems too: a misspelt ``read_idle_s`` must not silently fall back to
the default. What each field is, and how it is checked, is declared once on the dataclasses
of :mod:`routing.model` and :mod:`routing.upstream` and read by :func:`routing.declare.read`;
sections owned by other packages (``server``, ``audit``) are passed over here and read by
their owners the same way.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from routing.declare import read
from routing.fields import load_document
from routing.model import Config
from routing.urls import parse_base_url

__all__ = ["load_config", "parse_config", "parse_base_url"]


def load_config(path: str | os.PathLike[str]) -> Config:
    """Load and validate a configuration file. Raises :class:`ConfigError` with every problem."""
    return parse_config(load_document(path), source=str(path))


def parse_config(
    document: Mapping[str, Any],
    *,
    source: str = "configuration",
    foreign_sections: Collection[str] = frozenset({"server", "audit"}),
) -> Config:
    """Validate a parsed document. Raises :class:`ConfigError` with every problem found."""
    return read(Config, document, "", source=source, known=foreign_sections)
