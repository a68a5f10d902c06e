"""What the dashboard shows, read from the job's database: no Dash here, so tests can check
the figures without a browser.

The dashboard only reads. It opens SQLite read-only (it must never create an empty
database where the job will write one) and gives every failure a sentence for the page,
never a stack trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from contract.alerts import incidents
from contract.tables import (
    ALERTS_TABLE,
    COUNTS_TABLE,
    PERIODS,
    PROGRESS_TABLE,
    REJECTED_TABLE,
    as_utc,
)

HEALTH_WINDOW = 10  # batches used for the input rate and batches per minute
LATEST_ALERTS = 10  # incidents on the page
ALERT_ROWS_READ = 500  # the newest alert windows read to find them


class DataUnavailableError(Exception):
    """The database cannot be read; the message is what the page says."""


@dataclass(frozen=True)
class CountRow:
    period: str
    logins: int
    successful: int
    failed: int

    @property
    def failure_rate(self) -> float:
        return self.failed / self.logins if self.logins else 0.0


@dataclass(frozen=True)
class Health:
    """The pipeline's health from its last batches (None where it cannot be computed)."""

    last_batch: int
    last_batch_time: datetime
    seconds_since_last_batch: float
    last_batch_records: int | None
    processed_per_s: float | None  # the last batch's processing rate
    input_per_s: float | None  # records read per second over the window of batches
    batches_per_minute: float | None
    total_logins: int
    total_rejected: int
    end_offsets: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Incident:
    """One attack as the page lists it: an address's overlapping alert windows."""

    address: str
    first_event_time: datetime
    last_event_time: datetime
    failed: int  # the most failed logins in one of its windows
    accounts: int  # distinct accounts in that window
    windows: int
    detected_at: datetime  # when its first window crossed the rule


def latest_incidents(rows: list[dict[str, Any]], limit: int = LATEST_ALERTS) -> list[Incident]:
    """The newest ``limit`` incidents (by detection) among alert-table ``rows``."""
    found = []
    for run in incidents(rows):
        worst = max(run, key=lambda a: (a["failed"], a["accounts"]))
        found.append(
            Incident(
                address=run[0]["address"],
                first_event_time=as_utc(min(a["first_event_time"] for a in run)),
                last_event_time=as_utc(max(a["last_event_time"] for a in run)),
                failed=worst["failed"],
                accounts=worst["accounts"],
                windows=len(run),
                detected_at=as_utc(min(a["detected_at"] for a in run)),
            )
        )
    found.sort(key=lambda i: (i.detected_at, i.last_event_time), reverse=True)
    return found[:limit]


@dataclass(frozen=True)
class Snapshot:
    """One read of the database: the table, the rejections and the health."""

    period_kind: str
    counts: list[CountRow]
    rejected: list[tuple[str, int]]
    health: Health | None
    alerts: list[Incident] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.health is None and not self.counts

    @property
    def period_title(self) -> str:
        period = PERIODS.get(self.period_kind)
        return period.title if period else self.period_kind


def read_only_url(url: str) -> str:
    """SQLite files open read-only (``mode=ro``), so a missing file is reported, not made."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return url
    if parsed.database.startswith("file:"):
        return url
    path = Path(parsed.database).resolve()
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def compute_health(progress: list[dict[str, Any]], now: datetime) -> Health | None:
    """Health from progress rows (oldest first; the last ``HEALTH_WINDOW`` are enough)."""
    if not progress:
        return None
    last = progress[-1]
    window = progress[-HEALTH_WINDOW:]
    times = [as_utc(r["batch_time"]) for r in window]
    span = (times[-1] - times[0]).total_seconds()
    input_rate = per_minute = None
    if len(window) >= 2 and span > 0:
        # Records of the batches after the first, over the time since the first started.
        read = [r["records_read"] for r in window[1:]]
        if all(n is not None for n in read):
            input_rate = sum(read) / span
        per_minute = (len(window) - 1) * 60 / span
    last_time = as_utc(last["batch_time"])
    return Health(
        last_batch=last["batch_id"],
        last_batch_time=last_time,
        seconds_since_last_batch=max((now - as_utc(last["written_at"])).total_seconds(), 0.0),
        last_batch_records=last["records_read"],
        processed_per_s=last["records_per_s"],
        input_per_s=input_rate,
        batches_per_minute=per_minute,
        total_logins=last["total_logins"],
        total_rejected=last["total_rejected"],
        end_offsets=json.loads(last["end_offsets"] or "{}"),
    )


class Database:
    """The job's database, read through SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.shown_url = sa.engine.make_url(url).render_as_string(hide_password=True)
        self.engine = sa.create_engine(read_only_url(url), pool_pre_ping=True)
        self.metadata = sa.MetaData()

    def _table(self, conn: Any, name: str) -> sa.Table | None:
        if name not in self.metadata.tables:
            if not sa.inspect(conn).has_table(name):
                return None
            sa.Table(name, self.metadata, autoload_with=conn)
        return self.metadata.tables[name]

    def snapshot(self, now: datetime | None = None) -> Snapshot:
        """Read everything the page shows in one transaction (one consistent batch)."""
        now = now or datetime.now(timezone.utc)
        try:
            with self.engine.connect() as conn, conn.begin():
                counts_t, rejected_t, progress_t = (
                    self._table(conn, n) for n in (COUNTS_TABLE, REJECTED_TABLE, PROGRESS_TABLE)
                )
                if counts_t is None or progress_t is None or rejected_t is None:
                    return Snapshot("month", [], [], None)
                recent = conn.execute(
                    sa.select(progress_t)
                    .order_by(progress_t.c.batch_id.desc())
                    .limit(HEALTH_WINDOW)
                ).mappings()
                progress = sorted((dict(r) for r in recent), key=lambda r: r["batch_id"])
                kind = progress[-1]["period_kind"] if progress else "month"
                counts = [
                    CountRow(r.period, r.logins, r.successful, r.failed)
                    for r in conn.execute(
                        sa.select(counts_t)
                        .where(counts_t.c.period_kind == kind)
                        .order_by(counts_t.c.period)
                    )
                ]
                rejected = [
                    (r.reason, r.records)
                    for r in conn.execute(sa.select(rejected_t).order_by(rejected_t.c.reason))
                ]
                alerts_t = self._table(conn, ALERTS_TABLE)  # absent in a database from before
                alert_rows = (
                    [
                        dict(r)
                        for r in conn.execute(
                            sa.select(alerts_t)
                            .order_by(alerts_t.c.detected_at.desc())
                            .limit(ALERT_ROWS_READ)
                        ).mappings()
                    ]
                    if alerts_t is not None
                    else []
                )
        except sa.exc.SQLAlchemyError as exc:
            raise DataUnavailableError(self.explain(exc)) from None
        return Snapshot(
            kind, counts, rejected, compute_health(progress, now), latest_incidents(alert_rows)
        )

    def explain(self, exc: sa.exc.SQLAlchemyError) -> str:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:300]
        if self.engine.dialect.name == "sqlite" and "unable to open" in first:
            return (
                f"No database yet at {self.shown_url}: start the job with --output-dir "
                "(make demo, or make job) and it will appear."
            )
        return f"The database at {self.shown_url} cannot be read: {first}"
