"""design.md §4: nothing below a handler reads application state; telemetry flows one way.

Every module of the relay and every XCA-I module below its handler (found by listing the
folders, so a new one is checked too) gets what it needs as parameters from the handler (pool, registry, the
telemetry to hand records to) and write typed records on the exchange. They never reach the
application (``request.app``, ``config_dict``), the application keys, the metrics or the
security events, and never seal an exchange through the middleware.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"
_BELOW_HANDLERS = sorted(
    str(path.relative_to(GATEWAY))
    for folder in ("relay", "protocols/xca")
    for path in (GATEWAY / folder).glob("*.py")
    if path.name not in {"__init__.py", "handler.py"}  # a handler reads the application
)
RELAY_MODULES = ("exchange.py", "instances.py", *_BELOW_HANDLERS)
# What telemetry flowing the other way would import: application keys, the sinks, the seal.
FORBIDDEN_IMPORTS = {
    "gateway.keys",
    "gateway.sinks.metrics",
    "gateway.edge.middleware",
    "gateway.sinks.security",
}
FORBIDDEN_ATTRIBUTES = {"app", "config_dict"}


@pytest.mark.parametrize("module", RELAY_MODULES)
def test_no_relay_module_reads_application_state(module: str) -> None:
    tree = ast.parse((GATEWAY / module).read_text())
    offenders = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            offenders.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in FORBIDDEN_IMPORTS:
            offenders.append(f"line {node.lineno}: from {node.module} import …")
        elif isinstance(node, ast.Import):
            offenders += [
                f"line {node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name in FORBIDDEN_IMPORTS
            ]
    assert offenders == [], f"{module} reaches above the handler: {offenders}"


def test_the_redirect_follower_takes_no_metrics_or_security_events() -> None:
    tree = ast.parse((GATEWAY / "relay" / "redirects.py").read_text())
    follower = next(
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Follower"
    )
    init = next(
        node
        for node in follower.body
        if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    )
    parameters = {arg.arg for arg in init.args.args + init.args.kwonlyargs}
    assert parameters.isdisjoint({"metrics", "events", "exchange"}), parameters
