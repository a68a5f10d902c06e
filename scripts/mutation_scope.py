"""How much of the product `make mutation` mutates, in statements (coverage.py's count).

    .venv/bin/python scripts/mutation_scope.py

The product is every module of producer/, consumer/, contract/, reporting/, dashboard/ and
services/ (not tests/, bench/ or scripts/). In scope are the statements of the files in
pyproject.toml's ``[tool.mutmut] only_mutate`` that ``[tool.coverage.report] exclude_also``
leaves in (mutmut skips what coverage.py excludes: the Spark DataFrame code, the checks that
need a JVM or a broker, the entry points).
"""

from __future__ import annotations

import fnmatch
import sys
import warnings
from pathlib import Path

import coverage
import tomllib

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("producer", "consumer", "contract", "reporting", "dashboard", "services")


def statements(cov: coverage.Coverage, path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return len(cov.analysis2(str(path))[1])


def main() -> int:
    settings = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    patterns = settings["only_mutate"]
    files = sorted(p for package in PRODUCT for p in (ROOT / package).rglob("*.py"))
    everything = coverage.Coverage(config_file=False, data_file=None)
    scoped = coverage.Coverage(config_file=str(ROOT / "pyproject.toml"), data_file=None)
    for cov in (everything, scoped):
        cov.start()
        cov.stop()
    total = in_scope = 0
    rows = []
    for path in files:
        name = path.relative_to(ROOT).as_posix()
        count = statements(everything, path)
        mutated = any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
        kept = statements(scoped, path) if mutated else 0
        total += count
        in_scope += kept
        rows.append((name, count, kept))
    for name, count, kept in rows:
        print(f"{name:36} {count:5} statements, {kept:5} mutated")
    print(f"In scope: {in_scope:,} of the product's {total:,} statements ({in_scope / total:.1%}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
