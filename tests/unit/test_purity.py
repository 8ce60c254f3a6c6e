"""design.md §9 rule 1: the routing core imports no aiohttp or asyncio (checked two ways)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROUTING = Path(__file__).resolve().parents[2] / "routing"
FORBIDDEN = {"aiohttp", "asyncio", "socket", "gateway"}


def test_no_forbidden_import_statement() -> None:
    offenders = []
    for module in ROUTING.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{module.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_routing_loads_no_aiohttp_or_asyncio() -> None:
    code = (
        "import sys, routing.registry, routing.loader, routing.rad160;"
        "bad = sorted(m for m in ('aiohttp', 'asyncio') if m in sys.modules);"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROUTING.parent
    )
    assert out.stdout.strip() == ""
