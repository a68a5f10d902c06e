"""Figures for docs/RELIABILITY.md, written by the fault tests that observed them."""

from __future__ import annotations

import json

from services.settings import PROJECT_ROOT


def record_reliability(name: str, **row: object) -> None:
    """Keep a reliability test's figures for docs/RELIABILITY.md (scripts/reliability_report.py)."""

    folder = PROJECT_ROOT / "output" / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(row, indent=2) + "\n")
