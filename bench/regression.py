"""The regression guard of ``make bench``: each ratio against the last committed run.

Absolute numbers move with the machine's load; a ratio to a reference measured in the
same run moves much less, so a ratio that fell by more than :data:`THRESHOLD` since the
figures last committed in ``docs/PERFORMANCE.json`` is marked in the report. It marks,
it does not fail: benchmarks measure, tests check.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

THRESHOLD = 0.15


@dataclass(frozen=True)
class Change:
    """How one figure's ratio moved since the baseline; ``change`` > 0 is better."""

    name: str
    previous_ratio: float
    ratio: float
    change: float

    @property
    def regressed(self) -> bool:
        return round(self.change, 9) < -THRESHOLD  # exactly the threshold is not a drop

    def describe(self) -> str:
        text = f"{self.change:+.0%} (ratio {self.previous_ratio:.2f} before)"
        return f"**{text}: regression**" if self.regressed else text


def committed_baseline(path: Path, repo: Path) -> list[dict]:
    """The figures of ``path`` as last committed (``git show HEAD:path``); [] if none.

    The committed file, not the one on disk: a run that overwrote it must not become its
    own baseline.
    """
    relative = path.resolve().relative_to(repo.resolve()).as_posix()
    result = subprocess.run(
        ["git", "-C", str(repo), "show", f"HEAD:{relative}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return []
    try:
        return json.loads(result.stdout)
    except ValueError:
        return []


def compare(
    baseline: Iterable[Mapping], figures: Iterable[tuple[str, float | None, bool]]
) -> dict[str, Change]:
    """Changes of each ``(name, ratio, higher_is_better)`` against the same-named baseline.

    For a figure where lower is better (a latency, a start-up time), a falling ratio is
    the improvement, so the change is measured the other way round.
    """
    previous = {
        entry["name"]: entry["ratio"] for entry in baseline if entry.get("ratio") is not None
    }
    changes = {}
    for name, ratio, higher_is_better in figures:
        old = previous.get(name)
        if ratio is None or not old or not ratio:
            continue
        change = ratio / old - 1 if higher_is_better else old / ratio - 1
        changes[name] = Change(name, old, ratio, change)
    return changes
