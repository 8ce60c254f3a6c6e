"""Every item of the conformance checklists this project implements is asserted by at least
one test that names it, and the README names the ones out of scope.

Two checklists, one marker each: ``spec-digest.md`` (``@pytest.mark.checklist(N, ...)``) and
the XCA-I checklist of ``xcai-digest.md`` §9 (``@pytest.mark.xcai(N, ...)``). A test names an
item with the marker on the test function or class, or a module's ``pytestmark``. The source files are read as text (``ast``), so a test that is
never collected still counts: a marker on a skipped test would be a defect the suite
forbids elsewhere (no skips in CI), not here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.samples import shared_file

REPO = Path(__file__).resolve().parents[2]

ITEMS = range(1, 59)
OUT_OF_SCOPE: dict[int, str] = {}  # item → why; the README's "Out of scope" lists the same
IMPLEMENTED = frozenset(ITEMS) - OUT_OF_SCOPE.keys()

XCAI_ITEMS = range(1, 41)  # every one is implemented


def _marker_items(node: ast.expr, marker: str = "checklist") -> set[int]:
    """Item numbers of one ``pytest.mark.<marker>(...)`` expression, else nothing."""
    if not isinstance(node, ast.Call):
        return set()
    name = ast.unparse(node.func)
    if not name.endswith(f"mark.{marker}"):
        return set()
    return {
        arg.value
        for arg in node.args
        if isinstance(arg, ast.Constant) and isinstance(arg.value, int)
    }


def _items_named_in(source: str, marker: str = "checklist") -> set[int]:
    tree = ast.parse(source)
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if isinstance(node, ast.ClassDef) or node.name.startswith("test"):
                for decorator in node.decorator_list:
                    found |= _marker_items(decorator, marker)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = node.value.elts if isinstance(node.value, ast.List) else [node.value]
            for value in values:
                found |= _marker_items(value, marker)
    return found


def items_with_tests(marker: str = "checklist") -> dict[int, list[str]]:
    named: dict[int, list[str]] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        for item in _items_named_in(path.read_text(encoding="utf-8"), marker):
            named.setdefault(item, []).append(str(path.relative_to(REPO)))
    return named


def test_every_implemented_item_has_a_test_naming_it() -> None:
    named = items_with_tests()
    missing = sorted(IMPLEMENTED - named.keys())
    assert not missing, f"checklist items without a test that names them: {missing}"
    assert set(named) <= set(ITEMS), f"unknown item numbers: {sorted(set(named) - set(ITEMS))}"


def test_every_xcai_item_has_a_test_naming_it() -> None:
    named = items_with_tests("xcai")
    missing = sorted(set(XCAI_ITEMS) - named.keys())
    assert not missing, f"xcai-digest §9 items without a test that names them: {missing}"
    assert set(named) <= set(XCAI_ITEMS), f"unknown items: {sorted(set(named) - set(XCAI_ITEMS))}"


def test_the_xcai_checklist_has_the_items_this_test_knows() -> None:
    text = shared_file("xcai-digest.md").read_text(encoding="utf-8")
    section = text.partition("## 9. Conformance checklist")[2].partition("\n## ")[0]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", section, flags=re.MULTILINE)]
    assert numbers == list(XCAI_ITEMS)


def test_the_readme_names_every_item_out_of_scope() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.partition("### Out of scope")[2].partition("\n## ")[0]
    assert section, "README.md has no 'Out of scope' section"
    listed = {int(n) for n in re.findall(r"\b(\d{1,2})\b", section)}
    ranges = re.findall(r"\b(\d{1,2})[\u2013-](\d{1,2})\b", section)
    for low, high in ranges:
        listed |= set(range(int(low), int(high) + 1))
    # Both ways: an item implemented since must leave the README too.
    assert listed == OUT_OF_SCOPE.keys()


def test_the_checklist_has_the_items_this_test_knows() -> None:
    text = shared_file("spec-digest.md").read_text(encoding="utf-8").partition("## Conformance checklist")[2]
    numbers = [int(n) for n in re.findall(r"^(\d+)\. ", text, flags=re.MULTILINE)]
    assert numbers == list(ITEMS)


def test_marker_reader_finds_functions_classes_and_modules() -> None:
    source = (
        "import pytest\n"
        "pytestmark = [pytest.mark.checklist(1, 2)]\n"
        "@pytest.mark.checklist(3)\n"
        "def test_a(): pass\n"
        "@pytest.mark.checklist(4)\n"
        "class TestB: pass\n"
        "@pytest.mark.other(5)\n"
        "def test_c(): pass\n"
    )
    assert _items_named_in(source) == {1, 2, 3, 4}
