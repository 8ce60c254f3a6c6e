"""The Helm chart as the tests see it: linted and rendered offline by helm-python-sdk
(Helm v4's Go library through its C ABI), the same as ``helm lint --strict`` and ``helm
template`` (see :mod:`tests.deploy.commands`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

__all__ = ["CHART", "Rendered", "lint_errors", "render", "template"]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "mado-gateway"
RELEASE = "mado"
NAMESPACE = "mado"

Rendered = list[dict[str, Any]]


def lint_errors(chart: Path = CHART, values: Mapping[str, Any] | None = None) -> list[str]:
    """What ``helm lint --strict`` reports as a warning or an error (empty: clean)."""
    report = helm.lint(chart, dict(values) if values else None, strict=True, namespace=NAMESPACE)
    messages = [
        f"{message['path']}: {message['error']}"
        for message in report["messages"]
        if message["severity"] >= 2
    ]
    return messages + [str(error) for error in report["errors"]]


def template(values: Mapping[str, Any] | None = None, chart: Path = CHART) -> str:
    """``helm template mado CHART --namespace mado --values …``: the manifests, one YAML
    stream (NOTES.txt left out, as helm template does). The values are checked against
    values.schema.json first: :class:`helm_python.HelmValuesError` when they fail it."""
    with helm.Chart.load(chart) as loaded:
        loaded.validate_schema(dict(values) if values else None)
        manifests = loaded.render(
            dict(values) if values else None, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    documents = [
        text.strip()
        for path, text in sorted(manifests.items())
        if not path.endswith("NOTES.txt") and text.strip()
    ]
    return "\n---\n".join(documents) + "\n"


def render(values: Mapping[str, Any] | None = None, chart: Path = CHART) -> Rendered:
    """The rendered manifests as objects."""
    return [doc for doc in yaml.safe_load_all(template(values, chart)) if doc]


def notes(values: Mapping[str, Any] | None = None) -> str:
    """The rendered NOTES.txt."""
    with helm.Chart.load(CHART) as loaded:
        manifests = loaded.render(
            dict(values) if values else None, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def of_kind(rendered: Rendered, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in rendered if doc.get("kind") == kind]


def one(rendered: Rendered, kind: str) -> dict[str, Any]:
    found = of_kind(rendered, kind)
    assert len(found) == 1, f"{len(found)} {kind} objects rendered"
    return found[0]
