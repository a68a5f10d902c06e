"""Put the dashboard's page-load time, measured in headless Chromium, into docs/PERFORMANCE.md.

    make docs-dashboard      # runs the browser test, then this script

tests/integration/test_dashboard_browser.py opens the dashboard on a database written by a
real job run and measures, in the browser (Navigation Timing), when the table and the
chart were drawn; it writes them to output/dashboard/page_load.json. This script renders
them as the section between the markers below; ``make bench`` keeps that section when it
rewrites the rest of the page. The target is a figure here, not an assert in the test:
benchmarks measure, tests check. The test's picture of the alerts panel (a burst it made,
shown live) becomes docs/images/alerts.png, which the README shows.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.docker_report import DOC, write_section  # noqa: E402

RESULTS = ROOT / "output" / "dashboard" / "page_load.json"
# The alerts panel as the browser test saw it, for the README's alerts section.
PANEL = ROOT / "output" / "dashboard" / "alerts.png"
PANEL_DOC = ROOT / "docs" / "images" / "alerts.png"
START = "<!-- dashboard: written by scripts/dashboard_report.py; do not edit by hand -->"
END = "<!-- /dashboard -->"
TARGET_MS = 1000


def render(figures: dict) -> str:
    chart = figures["chart_shown_ms"]
    met = "yes" if chart <= TARGET_MS else "**no**"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            START,
            "## Dashboard page load (`make test-dashboard`)",
            "",
            f"Run: {when}; headless Chromium (Debian package), cold cache, against the SQLite "
            "database of a real job run. Reproduce: `make docs-dashboard`.",
            "",
            "| Figure | Value | Target | Met | Details |",
            "|---|---|---|---|---|",
            f"| Navigation start to the chart drawn | {chart:,} ms | <= {TARGET_MS:,} ms | "
            f"{met} | table drawn at {figures['table_shown_ms']:,} ms; "
            f"{figures['periods']} periods |",
            END,
        ]
    )


def main() -> int:
    if not RESULTS.exists():
        print(f"error: {RESULTS} is missing: run `make test-dashboard` first.", file=sys.stderr)
        return 1
    figures = json.loads(RESULTS.read_text())
    write_section(DOC, render(figures), START, END)
    print(f"Updated the dashboard section of {DOC.relative_to(ROOT)}.")
    if PANEL.exists():
        PANEL_DOC.write_bytes(PANEL.read_bytes())
        print(f"Copied the alerts panel to {PANEL_DOC.relative_to(ROOT)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
