"""The JSON Schema is never stricter than the loader: whatever the loader accepts, it accepts.
And the loader answers every document with a configuration or a ConfigError, never a crash.

An editor or a CI step that validates against ``mado-gateway config-schema`` must never flag a
file the gateway runs with. Hypothesis changes one value of a shipped example at a time
(letter case, spaces, numbers at and past their bounds, null, other types) and, whenever the
loader still accepts the file, checks the schema does too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.settings import parse_audit_settings
from gateway.cli import main
from gateway.settings import parse_server_settings
from routing.errors import ConfigError
from routing.loader import parse_config

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [yaml.safe_load(p.read_text()) for p in sorted(REPO.glob("examples/*.yaml"))]


def _schema() -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["config-schema"]) == 0
    schema: dict[str, Any] = json.loads(out.getvalue())
    return schema


VALIDATOR = jsonschema.Draft202012Validator(_schema())


def places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every key and list index of a document, outermost first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*path, index)
            yield from places(item, (*path, index))


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def respelled(text: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [text, text.upper(), text.lower(), text.title(), f" {text} ", text + "/", ""]
    )


WRITTEN = sorted({s for document in EXAMPLES for s in strings(document)})
spelled = st.sampled_from(WRITTEN).flatmap(respelled)
others = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-2, max_value=70000),
    st.integers(),
    st.sampled_from([0.0, 0.5, -0.5, 1e9, 10**400, float("inf"), float("nan")]),
    spelled,
    st.lists(spelled, max_size=2),
    st.just({}),
    st.text(max_size=6),
    st.recursive(st.none() | st.text(max_size=3), lambda inner: st.lists(inner, max_size=2)),
)


def near(value: Any) -> list[Any]:
    """Values like the one written: another spelling, a number at or past a bound."""
    if isinstance(value, str):
        return [value.upper(), value.lower(), value.title(), f" {value} ", value + "/", ""]
    if isinstance(value, bool):
        return [not value, None]
    if isinstance(value, int | float):
        return [0, 1, -1, value - 1, value + 1, float(value), 65535, 65536, None]
    if isinstance(value, list):
        return [[], value[:1], [*value, *value], *(value[0:1] and near(value[0]))]
    return [None, {}]


def variants() -> Iterator[dict[str, Any]]:
    """Each example with one value changed to each value near it."""
    for example in EXAMPLES:
        for where in places(example):
            document = copy.deepcopy(example)
            parent = document
            for step in where[:-1]:
                parent = parent[step]
            for value in near(parent[where[-1]]):
                parent[where[-1]] = value
                yield copy.deepcopy(document)


def loads(document: dict[str, Any]) -> bool:
    try:
        parse_config(document)
        parse_server_settings(document)
        parse_audit_settings(document, source="t")
    except ConfigError:
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_what_the_loader_accepts_the_schema_accepts(data: st.DataObject) -> None:
    document = copy.deepcopy(data.draw(st.sampled_from(EXAMPLES)))
    where = data.draw(st.sampled_from(list(places(document))))
    parent = document
    for step in where[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()) or not isinstance(parent, dict):
        parent[where[-1]] = data.draw(others)
    else:  # the same value under another spelling of its key
        parent[data.draw(spelled)] = parent.pop(where[-1])
    if loads(document):
        assert schema_errors(document) == [], document


def schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(document)]


def test_every_value_written_another_way() -> None:
    """Exhaustive over the examples: each value respelt, each number moved to its bounds."""
    accepted = [document for document in variants() if loads(document)]
    assert len(accepted) > 100  # the property is about something
    refused_by_schema = [(d, e) for d in accepted if (e := schema_errors(d))]
    assert refused_by_schema == []


def test_the_examples_load() -> None:
    assert all(loads(copy.deepcopy(document)) for document in EXAMPLES)
