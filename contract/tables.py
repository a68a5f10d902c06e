"""The tables the job writes and the charts read: periods, columns, file names, one reader.

A period is how event times are bucketed: calendar months (``2026-11``), ISO weeks
(``2026-W48``) or days (``2026-11-26``), in the job's time zone. The job writes one CSV per
run's period, named after it, with the columns below; the reader here is the only parser of
those files (chart, demo, benchmarks and tests use it).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Period:
    """One way of bucketing event time. ``key`` is the table's first column."""

    key: str
    title: str  # "logins per <title>"
    csv_name: str
    pattern: str  # what a bucket looks like, as a regular expression

    def matches(self, bucket: str) -> bool:
        return re.fullmatch(self.pattern, bucket) is not None


PERIODS: dict[str, Period] = {
    p.key: p
    for p in (
        Period("month", "calendar month", "monthly_logins.csv", r"\d{4}-(0[1-9]|1[0-2])"),
        Period("week", "ISO week", "weekly_logins.csv", r"\d{4}-W(0[1-9]|[1-4]\d|5[0-3])"),
        Period("day", "day", "daily_logins.csv", r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"),
    )
}
DEFAULT_PERIOD = "month"
COUNT_COLUMNS = ("logins", "successful", "failed")
REJECTED_CSV = "rejected_reasons.csv"
REJECTED_COLUMNS = ("reason", "records")

Counts = dict[str, tuple[int, int, int]]


class TableError(ValueError):
    """A file is not one of the job's tables; the message says what is wrong with it."""


def header(period: Period) -> tuple[str, ...]:
    return (period.key, *COUNT_COLUMNS)


def read_counts(path: Path) -> tuple[Period, Counts]:
    """A table the job wrote: its period and ``bucket -> (logins, successful, failed)``."""
    try:
        with path.open(newline="") as handle:
            rows = list(csv.reader(handle))
    except FileNotFoundError:
        raise TableError(f"{path} does not exist") from None
    if not rows:
        raise TableError(f"{path} is empty")
    period = next((p for p in PERIODS.values() if tuple(rows[0]) == header(p)), None)
    if period is None:
        expected = " or ".join(",".join(header(p)) for p in PERIODS.values())
        raise TableError(f"{path} has the header {','.join(rows[0])!r}, not {expected}")
    counts: Counts = {}
    for number, row in enumerate(rows[1:], start=2):
        try:
            bucket, logins, successful, failed = row[0], *(int(v) for v in row[1:])
        except ValueError:
            raise TableError(f"{path}, line {number}: {','.join(row)!r} is not a row") from None
        if not period.matches(bucket):
            raise TableError(f"{path}, line {number}: {bucket!r} is not a {period.key}")
        counts[bucket] = (logins, successful, failed)
    return period, counts


def read_rejected(path: Path) -> dict[str, int]:
    """``reason -> records`` from the job's rejected-reasons table."""
    with path.open(newline="") as handle:
        return {row["reason"]: int(row["records"]) for row in csv.DictReader(handle)}
