"""docs/PERFORMANCE.md from the figures of one ``make bench`` run, keeping the sections that
are written by hand or by other targets."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.figures import Figure, Sizes
from bench.regression import THRESHOLD, Change

# -- report ------------------------------------------------------------------------------------


# What limits the figures and what was tried is prose about measurements: it lives in
# docs/PERFORMANCE.md between these markers, edited by hand, and every run keeps it.
NOTES_START = "<!-- notes: edited by hand; make bench keeps this section -->"
NOTES_END = "<!-- /notes -->"
NOTES_PLACEHOLDER = "## What limits the figures, and what was tried\n\n(To be written.)\n"


def with_kept_sections(report: str, page: Path) -> str:
    """Keep the hand-written notes and the sections that ``make test-docker``,
    ``make test-dashboard``, ``make test-cluster``, ``make bench-cluster`` and ``make
    bench-realtime`` wrote."""
    from bench import cluster, realtime
    from scripts import dashboard_report, docker_report

    old = page.read_text() if page.exists() else ""
    for start, end in ((NOTES_START, NOTES_END), (docker_report.START, docker_report.END),
                       (dashboard_report.START, dashboard_report.END),
                       (docker_report.CLUSTER_START, docker_report.CLUSTER_END),
                       (cluster.START, cluster.END),
                       (realtime.START, realtime.END)):  # fmt: skip
        if start in old and end in old:
            kept = start + old.split(start, 1)[1].split(end, 1)[0] + end
            report = docker_report.replace_section(report, kept, start, end)
    return report


def render(
    figures: list[Figure],
    machine: dict[str, str],
    sizes: Sizes,
    smoke: bool,
    changes: dict[str, Change] | None = None,
) -> str:
    """The Markdown page; ``changes`` (from :mod:`bench.regression`) fill "vs last"."""
    changes = changes or {}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Measured by `make bench` (`python -m bench.run`) on one local Kafka broker, every "
        "figure next to a reference measured in the same run on the same broker. These "
        "machines are shared and noisy: compare ratios, not absolute numbers, between runs.",
        "",
        f"Run: {when}{' (smoke sizes: not representative)' if smoke else ''}.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()) + ".",
        "",
        '"vs last" compares each ratio with the one in the last committed '
        "`docs/PERFORMANCE.json` (higher is better for rates, lower for times); a drop of "
        f"more than {THRESHOLD:.0%} is marked as a regression.",
        "",
        "| Figure | Value | Reference | Reference value | Ratio | vs last | Target | Met | "
        "Details |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        reference = "" if f.reference_value is None else f"{f.reference_value:,.2f}"
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        value = f"{f.value:,.2f} {f.unit}" if f.value < 100 else f"{f.value:,.0f} {f.unit}"
        change = changes[f.name].describe() if f.name in changes else ""
        lines.append(f"| {f.name} | {value} | {f.reference} | {reference} | {ratio} | "
                     f"{change} | {f.target} | {met} | {f.detail} |")  # fmt: skip
    lines += ["", NOTES_START, NOTES_PLACEHOLDER, NOTES_END]
    lines += ["", "## How to reproduce", ""]
    lines += [
        "Each figure alone (its reference is measured again with it): "
        "`python -m bench.run --steps STEP --output /tmp/performance.md`.",
        "",
    ]
    lines += [f"- {f.name}: `--steps {f.step}`; measures `{f.command}`" for f in figures]
    lines += ["", f"Sizes: {asdict(sizes)}."]
    return "\n".join(lines) + "\n"
