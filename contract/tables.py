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
from datetime import datetime, timezone
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


# The database the job writes next to the CSV (``--db-url``; SQLite in the output folder by
# default) and the dashboard reads. Names and columns live here, once: the job's writer
# (consumer/database.py), the dashboard and the tests all take them from this module.
DEFAULT_DB_NAME = "logins.db"
COUNTS_TABLE = "login_counts"
REJECTED_TABLE = "rejected_reasons"
PROGRESS_TABLE = "batch_progress"
ALERTS_TABLE = "login_alerts"


def url_with_password(url: str, password: str) -> str:
    """``url`` (``dialect+driver://user@host/db``) with ``password`` put after its user name.

    For passwords kept out of the URL, in an environment variable (the Docker stack's env
    files): the password is percent-encoded, as SQLAlchemy expects it in a URL. A URL without
    a user name, or one that has a password already, is refused (ValueError): which password
    wins would be a guess.
    """
    from urllib.parse import quote

    scheme, separator, rest = url.partition("://")
    authority = rest.split("/", 1)[0]
    if not separator or "@" not in authority:
        raise ValueError("the database URL names no user (dialect://user@host/database)")
    user, host = authority.rsplit("@", 1)
    if ":" in user:
        raise ValueError("the database URL has a password already")
    return f"{scheme}://{user}:{quote(password, safe='')}@{host}{rest[len(authority) :]}"


def as_utc(moment: datetime) -> datetime:
    """A timestamp read back from the database as an aware UTC datetime: SQLite returns it
    without its zone, and the job writes every timestamp in UTC."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


@dataclass(frozen=True)
class Column:
    """One database column: its name, a portable type and whether it may be NULL."""

    name: str
    kind: str  # "text", "integer", "float" or "timestamp" (UTC, timezone-aware)
    nullable: bool = False
    primary_key: bool = False


DB_TABLES: dict[str, tuple[Column, ...]] = {
    # The whole counts table, one row per (period kind, period); ``batch_id`` is the batch
    # that last wrote the row. Every batch upserts all rows and deletes those it did not
    # write, so the table always equals the checkpoint's state, never more.
    COUNTS_TABLE: (
        Column("period_kind", "text", primary_key=True),
        Column("period", "text", primary_key=True),
        Column("logins", "integer"),
        Column("successful", "integer"),
        Column("failed", "integer"),
        Column("batch_id", "integer"),
    ),
    REJECTED_TABLE: (
        Column("reason", "text", primary_key=True),
        Column("records", "integer"),
        Column("batch_id", "integer"),
    ),
    # One row per micro-batch, keyed by Spark's batch id, so a batch replayed after a crash
    # replaces its own row. Counts come from the offset log and the state's totals, which a
    # replay reproduces exactly; the timing columns describe the run that wrote the row.
    PROGRESS_TABLE: (
        Column("batch_id", "integer", primary_key=True),
        Column("topic", "text"),
        Column("period_kind", "text"),
        Column("batch_time", "timestamp"),
        Column("written_at", "timestamp"),
        Column("records_read", "integer"),
        Column("rejected", "integer", nullable=True),
        Column("repeats_dropped", "integer", nullable=True),
        Column("total_logins", "integer"),
        Column("total_rejected", "integer"),
        Column("duration_s", "float"),
        Column("records_per_s", "float", nullable=True),
        Column("end_offsets", "text"),  # JSON: {"topic": {"partition": next offset}}
    ),
    # One row per credential-stuffing alert (contract/alerts.py), keyed by address and window:
    # the ledger that makes a replayed batch alert nothing twice. The counts grow while the
    # window is open; ``detected_at`` is when the window first crossed the rule, and
    # ``published_at`` when its record reached the alerts topic (NULL: not yet).
    ALERTS_TABLE: (
        Column("address", "text", primary_key=True),
        Column("window_start", "timestamp", primary_key=True),
        Column("window_end", "timestamp"),
        Column("failed", "integer"),
        Column("accounts", "integer"),
        Column("first_event_time", "timestamp"),
        Column("last_event_time", "timestamp"),
        Column("detected_at", "timestamp"),
        Column("published_at", "timestamp", nullable=True),
        Column("batch_id", "integer"),
    ),
}
