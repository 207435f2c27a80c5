"""The import layers of the package, as the README's "Code map" states them: a subpackage imports
only the subpackages below it, so that, e.g., the statistics never depend on how reports look
and nothing but ingest and the step adapters can reach the raw exports."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dpo_eval"

# What each subpackage may import besides itself (the README's Code map). "(top)" is the
# package's own __init__ (the version).
ALLOWED = {
    "core": set(),
    "ingest": {"core"},
    "analysis": {"core"},
    "simulate": {"core"},
    "delivery": {"core"},
    "release": {"core"},
    "simulation_studies": {"core", "analysis", "ingest", "simulate"},
    "reporting": {"(top)", "core", "analysis", "release", "simulation_studies"},
    "steps": {"core", "ingest", "analysis", "release", "reporting", "delivery"},
    "cli": {"(top)", "core", "ingest", "analysis", "simulate", "simulation_studies", "delivery",
            "steps"},
}


def imported_modules(path: Path, package: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a file of ``package``, also those inside functions."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = path.parent.relative_to(package.parent).parts
                base = ".".join(here[: len(here) - node.level + 1])
                module = ".".join(filter(None, [base, node.module]))
            else:
                module = node.module or ""
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def layer_of(dotted: str, package: Path) -> str | None:
    parts = dotted.split(".")
    if parts[0] != "dpo_eval" or len(parts) < 2:
        return None
    return parts[1] if (package / parts[1]).is_dir() else "(top)"


def violations(package: Path = PACKAGE) -> list[str]:
    """Every import that crosses the layers the wrong way, as "file:line imports name"."""
    problems = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        if len(parts) == 1:
            continue  # the package's __init__
        layer = parts[0]
        allowed = ALLOWED.get(layer)
        if allowed is None:
            problems.append(f"{path.relative_to(package)}: subpackage {layer!r} is not in the code map")
            continue
        for line, name in imported_modules(path, package):
            target = layer_of(name, package)
            if target is not None and target != layer and target not in allowed:
                problems.append(f"{path.relative_to(package)}:{line} imports {name} "
                                f"({layer} may import {', '.join(sorted(allowed)) or 'nothing of the package'})")
    return problems


def test_every_subpackage_imports_only_the_layers_below_it():
    assert violations() == []


def test_the_package_has_no_module_outside_a_subpackage_but_its_init():
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]
    assert set(ALLOWED) == {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}


@pytest.mark.parametrize("layer, module, statement", [
    ("analysis", "models.py", "from dpo_eval.reporting import figures\n"),
    ("core", "study.py", "def late():\n    import dpo_eval.ingest.codes\n"),
    ("ingest", "codes.py", "from ..delivery import message\n"),
])
def test_a_forbidden_import_is_caught(tmp_path, layer, module, statement):
    copy = tmp_path / "dpo_eval"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(copy) == []
    target = copy / layer / module
    target.write_text(target.read_text(encoding="utf-8") + "\n" + statement, encoding="utf-8")
    found = violations(copy)
    assert len(found) == 1 and found[0].startswith(f"{layer}/{module}:"), found
