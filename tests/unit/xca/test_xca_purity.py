"""design.md §9 rule 1 for the XCA-I core: the pure modules of gateway.protocols.xca import
no aiohttp, asyncio or socket, directly or through what they import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
XCA = REPO / "gateway" / "protocols" / "xca"
PURE: tuple[str, ...] = ("model", "errors", "xmlsafe", "bodies", "envelope", "mtom")
PURE += ("outcomes", "consolidate", "screening", "webrequest")
ROUTED = ("plan",)  # reads the registry: routing loads ssl (TLS profiles), hence socket
FORBIDDEN = {"aiohttp", "asyncio", "socket"}


def test_no_forbidden_import_statement() -> None:
    offenders = []
    for name in PURE + ROUTED:
        for node in ast.walk(ast.parse((XCA / f"{name}.py").read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def _loaded(names: tuple[str, ...], forbidden: set[str]) -> str:
    modules = ", ".join(f"gateway.protocols.xca.{name}" for name in names)
    code = (
        f"import sys, {modules};"
        f"print(','.join(sorted(m for m in {sorted(forbidden)!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return out.stdout.strip()


def test_importing_the_core_loads_no_aiohttp_asyncio_or_socket() -> None:
    assert _loaded(PURE, FORBIDDEN) == ""


def test_importing_the_plan_loads_no_aiohttp_or_asyncio() -> None:
    assert _loaded(ROUTED, {"aiohttp", "asyncio"}) == ""
