"""`make mutation` runs the unit tests in mutmut's copy of the tree (mutants/), which holds
only what pyproject.toml's [tool.mutmut] names. A test that imports a package left out of
that list breaks the whole run ("failed to collect stats"), and nothing else runs it, so
this cheap check stands in for it in `make test`."""

from __future__ import annotations

import ast
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]


def copied_into_mutants() -> set[str]:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return {str(p) for p in settings["source_paths"] + settings["also_copy"]} | {"tests"}


def project_imports(path: Path) -> set[str]:
    """Top-level names the file imports that are folders or modules of this project."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return {n for n in names if (ROOT / n).is_dir() or (ROOT / f"{n}.py").is_file()}


def test_every_package_the_unit_tests_import_is_copied_for_mutmut():
    copied = copied_into_mutants()
    files = [*(ROOT / "tests" / "unit").glob("*.py"), *(ROOT / "tests" / "support").glob("*.py")]
    missing = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in project_imports(path) - copied
    }
    assert not missing, "add to [tool.mutmut] also_copy: " + "; ".join(sorted(missing))


def test_every_copied_path_exists():
    assert [p for p in copied_into_mutants() if not (ROOT / p).exists()] == []
