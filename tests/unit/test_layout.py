"""design.md §9: each package of ``gateway`` imports only what its ``__init__`` allows, and
``gateway/`` itself holds at most a dozen modules."""

from __future__ import annotations

import ast
from pathlib import Path

GATEWAY = Path(__file__).resolve().parents[2] / "gateway"

TOP = {"gateway.errors", "gateway.exchange", "gateway.instances"}
ALLOWED = {
    "relay": TOP | {"gateway.relay"},
    "sinks": TOP | {"gateway.sinks"},
    "edge": TOP
    | {"gateway.keys", "gateway.settings", "gateway.edge", "gateway.sinks"}
    | {"gateway.relay.tls", "gateway.relay.handover"},
    "protocols": TOP
    | {"gateway.keys", "gateway.settings", "gateway.relay", "gateway.protocols"}
    | {"gateway.manifestcache"},
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
    return [name for name in names if name == "gateway" or name.startswith("gateway.")]


def _allowed(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_each_package_imports_only_what_it_may() -> None:
    offenders = []
    for package, prefixes in ALLOWED.items():
        for module in (GATEWAY / package).rglob("*.py"):
            for name in _imports(module):
                if not _allowed(name, prefixes):
                    offenders.append(f"{module.relative_to(GATEWAY.parent)}: {name}")
    assert offenders == []


def test_gateway_holds_at_most_a_dozen_modules_directly() -> None:
    modules = sorted(p.name for p in GATEWAY.glob("*.py"))
    assert len(modules) <= 12, modules


def test_every_package_says_what_it_owns_and_may_import() -> None:
    for init in GATEWAY.rglob("__init__.py"):
        assert ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), init
    for package in ALLOWED:
        doc = ast.get_docstring(ast.parse((GATEWAY / package / "__init__.py").read_text()))
        assert doc is not None
        assert "May import" in doc or "may import" in doc, package
