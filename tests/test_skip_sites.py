"""Every way a test can be skipped goes through one switch: `@pytest.mark.requires_tool` (the hook
in conftest.py) or a function that fails instead of skipping under DPO_EVAL_REQUIRE_TOOLS=1.
A new `skipif`, `importorskip`, plain `pytest.skip` or an assertion guarded by a tool lookup
(`if shutil.which(...)`) would let CI pass without having run what it claims to; this test
finds such sites in the test files by their syntax."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
SKIP_DECORATORS = {"skip", "skipif", "xfail"}
TOOL_LOOKUPS = {"which", "tool_available", "find_spec"}
# Attributes that tell whether an optional library is loaded (WeasyPrint's HarfBuzz subsetter).
TOOL_FLAGS = {"harfbuzz_subset"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _functions_with_parents(tree: ast.AST):
    for parent in ast.walk(tree):
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield parent


def unguarded_skip_sites(source: str, filename: str) -> list[str]:
    """The places in `source` where a test may be skipped (or its assertions left out) without
    the DPO_EVAL_REQUIRE_TOOLS switch turning that into a failure."""
    tree = ast.parse(source, filename=filename)
    guarded = {id(node) for function in _functions_with_parents(tree)
               if any(isinstance(n, ast.Name) and n.id == "REQUIRE_TOOLS" for n in ast.walk(function))
               for node in ast.walk(function)}
    sites = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _dotted(node) in ("pytest.skip", "pytest.importorskip") \
                and id(node) not in guarded:
            sites.add((node.lineno, f"{_dotted(node)}()"))
        elif isinstance(node, (ast.Attribute, ast.Call)) and _dotted(node).startswith("pytest.mark.") \
                and _dotted(node).split(".")[2] in SKIP_DECORATORS:
            sites.add((node.lineno, _dotted(node)))
        elif isinstance(node, (ast.If, ast.IfExp)) and id(node) not in guarded:
            lookups = [n for n in ast.walk(node.test)
                       if isinstance(n, ast.Call) and _dotted(n).rsplit(".", 1)[-1] in TOOL_LOOKUPS
                       or isinstance(n, ast.Attribute) and n.attr in TOOL_FLAGS]
            if lookups:
                sites.add((node.lineno, f"an assertion guarded by {_dotted(lookups[0])}"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(sites)]


def test_every_skip_in_the_suite_goes_through_the_required_tools_switch():
    sites = []
    for path in sorted(TESTS.rglob("*.py")):
        if "reference" in path.relative_to(TESTS).parts:  # scripts that make reference numbers
            continue
        sites += unguarded_skip_sites(path.read_text(encoding="utf-8"), str(path.relative_to(TESTS)))
    assert not sites, ("skips that DPO_EVAL_REQUIRE_TOOLS cannot turn into failures (use "
                       "@pytest.mark.requires_tool, see conftest.py):\n" + "\n".join(sites))


def test_the_skip_site_scan_finds_each_kind_of_unguarded_skip():
    planted = '''
import shutil, pytest
@pytest.mark.skipif(shutil.which("R") is None, reason="no R")
def test_a():
    pass
def test_b():
    pytest.skip("no tool")
def test_c():
    if shutil.which("pdftotext"):
        assert True
def test_d():
    pytest.importorskip("pikepdf")
def test_e():
    if ffi.harfbuzz_subset is not None:
        assert True
def test_guarded():
    if REQUIRE_TOOLS:
        pytest.fail("x")
    pytest.skip("allowed: the switch turns it into a failure")
'''
    sites = unguarded_skip_sites(planted, "planted.py")
    assert [site.split(":")[1] for site in sites] == ["3", "7", "9", "12", "14"], sites
