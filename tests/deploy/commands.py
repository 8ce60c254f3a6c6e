"""The commands of the README's "Deploy on Kubernetes" section, as the tests run them.

Each is written here exactly as the README shows it (``test_readme.py`` checks that each line
is there); a test runs it with some words replaced by its own temporary paths and names
(:func:`argv`). ``helm lint`` and ``helm template`` are run through helm-python-sdk (Helm's
own Go library; no helm binary is installed here) with the same options.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

__all__ = ["COMMANDS", "argv"]

COMMANDS: Mapping[str, str] = {
    "download": "pip download --dest wheels --only-binary=:all: . hatchling",
    "build": (
        "podman build --format docker --network=none --build-context wheels=wheels"
        " --build-arg BASE_IMAGE=$BASE_IMAGE --tag mado-gateway:0.1.0 ."
    ),
    "run": (
        "podman run --detach --name mado-gateway --read-only --cap-drop=ALL --network=host"
        " --volume ./config.yaml:/etc/mado-gateway/config.yaml:ro"
        " --volume ./audit:/var/lib/mado-gateway mado-gateway:0.1.0"
    ),
    "healthcheck": "podman healthcheck run mado-gateway",
    "hadolint": "hadolint Dockerfile",
    "lint": "helm lint --strict charts/mado-gateway",
    "template": (
        "helm template mado charts/mado-gateway --namespace mado --values values.yaml"
        " > rendered.yaml"
    ),
    "validate-oldest": "kubernetes-validate --strict --kubernetes-version 1.25.0 rendered.yaml",
    "validate-newest": "kubernetes-validate --strict --kubernetes-version 1.37.0 rendered.yaml",
    "checkov": "checkov --quiet --compact --skip-download --framework kubernetes --file rendered.yaml",
    "kube-play": "podman kube play --network=host rendered.yaml",
    "kube-down": "podman kube down rendered.yaml",
    "check-rules": "promtool check rules charts/mado-gateway/files/alerts.yaml",
    "test-rules": "promtool test rules tests/deploy/alerts_test.yaml",
}


def argv(name: str, replace: Mapping[str, str] | None = None) -> list[str]:
    """The words of command ``name``, each word found in ``replace`` replaced."""
    words = shlex.split(COMMANDS[name])
    return [(replace or {}).get(word, word) for word in words]
