"""``make report``: logins per period as a chart, from the job's table (``monthly_logins.csv``,
``weekly_logins.csv`` or ``daily_logins.csv``; the header says which).

    python -m reporting.chart [--input output/demo/monthly_logins.csv | --db-url URL]
                              [--output output/monthly_logins.png]

Bars per period split into successful and failed logins, the failure rate as a line on a
second axis (spikes are the simulated credential-stuffing attacks), period and totals in
the title. The image is 1200 x 540 pixels, legible at the width of a README.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from contract.tables import DEFAULT_PERIOD, PERIODS, Period, TableError, read_counts

DEFAULT_INPUT = Path("output/demo/monthly_logins.csv")
DEFAULT_OUTPUT = Path("output/monthly_logins.png")
SIZE_INCHES, DPI = (12, 5.4), 100


class ReportError(ValueError):
    """The input cannot be charted; the message says why and what to do."""


@dataclass(frozen=True)
class CountRow:
    bucket: str
    logins: int
    successful: int
    failed: int


def read_table(path: Path) -> tuple[Period, list[CountRow]]:
    """The job's table through the contract's reader, checked for consistent counts."""
    if not path.exists():
        raise ReportError(
            f"{path} does not exist. Run `make demo` (or the job with --output-dir) first, "
            "or point --input at the job's monthly_logins.csv (or weekly_, daily_)."
        )
    try:
        period, counts = read_counts(path)
    except TableError as exc:
        raise ReportError(f"{exc}: not a table the job wrote.") from None
    rows = [CountRow(bucket, *numbers) for bucket, numbers in counts.items()]
    for number, row in enumerate(rows, start=2):
        if row.successful + row.failed != row.logins:
            raise ReportError(f"{path}, line {number}: inconsistent row {row}.")
    if not rows:
        raise ReportError(
            f"{path} has a header but no {period.key}s: no valid events were counted."
        )
    return period, rows


def read_database(url: str) -> tuple[Period, list[CountRow]]:
    """The job's table from its database (``--db-url``), read as the dashboard reads it."""
    try:
        from dashboard.data import Database, DataUnavailableError
    except ImportError:
        raise ReportError("--db-url needs SQLAlchemy: pip install '.[dashboard]'") from None
    try:
        snapshot = Database(url).snapshot()
    except DataUnavailableError as exc:
        raise ReportError(str(exc)) from None
    except Exception as exc:  # a malformed URL or a driver that is not installed
        raise ReportError(f"--db-url {url!r} cannot be used: {exc}") from None
    if not snapshot.counts:
        raise ReportError(f"{url} has no counts yet: run the job with this database first.")
    rows = [CountRow(r.period, r.logins, r.successful, r.failed) for r in snapshot.counts]
    return PERIODS[snapshot.period_kind], rows


def render_chart(rows: list[CountRow], period: Period = PERIODS[DEFAULT_PERIOD]) -> Figure:
    """The chart as a matplotlib Figure (so tests can inspect what was drawn)."""
    buckets = [r.bucket for r in rows]
    positions = range(len(rows))
    figure, axes = plt.subplots(figsize=SIZE_INCHES, dpi=DPI)
    axes.bar(positions, [r.successful for r in rows], color="#4c78a8", label="successful")
    axes.bar(
        positions,
        [r.failed for r in rows],
        bottom=[r.successful for r in rows],
        color="#e45756",
        label="failed",
    )
    axes.set_ylabel(f"logins per {period.key}")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    step = max(1, len(rows) // 12)
    axes.set_xticks(list(positions)[::step], buckets[::step], rotation=45, ha="right")
    axes.grid(axis="y", alpha=0.3)
    rate_axes = axes.twinx()
    rate_axes.plot(
        positions,
        [r.failed / r.logins for r in rows],
        color="#333333",
        marker="o",
        markersize=3,
        linewidth=1.2,
        label="failure rate",
    )
    rate_axes.set_ylabel("failure rate")
    rate_axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    rate_axes.set_ylim(bottom=0)
    total = sum(r.logins for r in rows)
    failed = sum(r.failed for r in rows)
    axes.set_title(
        f"Logins per {period.title}, {buckets[0]} to {buckets[-1]}: {total:,} logins, "
        f"{failed:,} failed ({failed / total:.1%})"
    )
    handles = axes.get_legend_handles_labels()[0] + rate_axes.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="upper left", frameon=False)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reporting.chart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--input",
        type=Path,
        default=DEFAULT_INPUT,
        help="the job's table: monthly_logins.csv, weekly_ or daily_ (default: %(default)s)",
    )
    source.add_argument(
        "--db-url",
        metavar="URL",
        help="read the table from the job's database instead, e.g. sqlite:///output/demo/logins.db",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="PNG to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        period, rows = read_database(args.db_url) if args.db_url else read_table(args.input)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figure = render_chart(rows, period)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output)
    plt.close(figure)
    total = sum(r.logins for r in rows)
    print(f"Wrote {args.output} ({len(rows)} {period.key}s, {total:,} logins).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
