"""``make report``: logins per month as a chart, from the job's ``monthly_logins.csv``.

    python -m reporting.monthly_chart [--input output/demo/monthly_logins.csv]
                                      [--output reports/monthly_logins.png]

Bars per month split into successful and failed logins, the failure rate as a line on a
second axis (spikes are the simulated credential-stuffing attacks), period and totals in
the title. The image is 1200 x 540 pixels, legible at the width of a README.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

DEFAULT_INPUT = Path("output/demo/monthly_logins.csv")
DEFAULT_OUTPUT = Path("reports/monthly_logins.png")
COLUMNS = ("month", "logins", "successful", "failed")
SIZE_INCHES, DPI = (12, 5.4), 100


class ReportError(ValueError):
    """The input cannot be charted; the message says why and what to do."""


@dataclass(frozen=True)
class MonthRow:
    month: str
    logins: int
    successful: int
    failed: int


def read_monthly_csv(path: Path) -> list[MonthRow]:
    """The job's table, validated: header, ``YYYY-MM`` months, consistent counts."""
    if not path.exists():
        raise ReportError(
            f"{path} does not exist. Run `make demo` (or the job with --output-dir) first, "
            "or point --input at a monthly_logins.csv."
        )
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ReportError(f"{path} is empty: the job has not written a table yet.")
        if tuple(header) != COLUMNS:
            raise ReportError(
                f"{path} is not the job's monthly table: expected the header "
                f"{','.join(COLUMNS)}, found {','.join(header)}."
            )
        rows = []
        for number, fields in enumerate(reader, start=2):
            try:
                month, logins, successful, failed = fields
                row = MonthRow(month, int(logins), int(successful), int(failed))
            except ValueError:
                raise ReportError(f"{path}, line {number}: cannot read {fields!r}.") from None
            if len(month) != 7 or month[4] != "-" or row.successful + row.failed != row.logins:
                raise ReportError(f"{path}, line {number}: inconsistent row {fields!r}.")
            rows.append(row)
    if not rows:
        raise ReportError(f"{path} has a header but no months: no valid events were counted.")
    return rows


def render_chart(rows: list[MonthRow]) -> Figure:
    """The chart as a matplotlib Figure (so tests can inspect what was drawn)."""
    months = [r.month for r in rows]
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
    axes.set_ylabel("logins per month")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    step = max(1, len(rows) // 12)
    axes.set_xticks(list(positions)[::step], months[::step], rotation=45, ha="right")
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
        f"Logins per calendar month, {months[0]} to {months[-1]}: {total:,} logins, "
        f"{failed:,} failed ({failed / total:.1%})"
    )
    handles = axes.get_legend_handles_labels()[0] + rate_axes.get_legend_handles_labels()[0]
    axes.legend(handles=handles, loc="upper left", frameon=False)
    figure.tight_layout()
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reporting.monthly_chart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--input",
        type=Path,
        default=DEFAULT_INPUT,
        help="the job's monthly_logins.csv (default: %(default)s)",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="PNG to write (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    try:
        rows = read_monthly_csv(args.input)
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figure = render_chart(rows)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output)
    plt.close(figure)
    print(f"Wrote {args.output} ({len(rows)} months, {sum(r.logins for r in rows):,} logins).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
