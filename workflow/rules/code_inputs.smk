# Code inputs derived from imports, shared by the Snakefile (common.smk) and
# workflow/simulation.smk. The including file defines PACKAGE_ROOT (the folder holding the
# package `dpo_eval`) and SCRIPTS_DIR (the folder of the rules' scripts).
import contextlib
import functools
from pathlib import Path


def project_path(path):
    """``path`` relative to the working directory when it lies inside it: inputs recorded in
    Snakemake's metadata then stay valid when the project folder is moved or copied."""
    path = Path(path)
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def _module_file(dotted):
    """The source file of a `dpo_eval` module ("dpo_eval.steps.analysis_rules"), or None when the
    name is not a module (a function or constant imported from one)."""
    base = Path(PACKAGE_ROOT, *dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_imports(path):
    """Files of the `dpo_eval` modules that a source file imports anywhere in it (also inside
    functions), with the package `__init__` files that importing them executes."""
    return _parsed_package_imports(str(Path(path).resolve()))


# Every rule's closure walks the same modules: each file is parsed once per DAG build (this
# halves the time of a dry run, which the tests run about a hundred times).
@functools.lru_cache(maxsize=None)
def _parsed_package_imports(path):
    import ast

    names = set()
    for node in ast.walk(ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative import: resolve against the importing file's package
                package = Path(path).resolve().parent.relative_to(Path(PACKAGE_ROOT).resolve())
                parts = package.parts[: len(package.parts) - node.level + 1]
                source = ".".join([*parts, *filter(None, [source])])
            names.add(source)
            names |= {f"{source}.{alias.name}" for alias in node.names}
    files = set()
    for name in names:
        parts = name.split(".")
        if parts[0] != "dpo_eval":
            continue
        for end in range(1, len(parts) + 1):
            module_file = _module_file(".".join(parts[:end]))
            if module_file is not None:
                files.add(module_file)
    return frozenset(files)  # cached and shared by every caller


def script_code(script):
    """The package modules that <SCRIPTS_DIR>/<script>.py runs: the transitive closure of
    its `dpo_eval` imports. A rule declares them as inputs, so that an edit of any of them
    reruns exactly the rules that run it (tests/test_reruns.py checks every rule)."""
    seen, pending = set(), [Path(SCRIPTS_DIR) / f"{script}.py"]
    while pending:
        for module_file in _package_imports(pending.pop()):
            if module_file not in seen:
                seen.add(module_file)
                pending.append(module_file)
    return sorted(project_path(module_file) for module_file in seen)
