"""The database sink: each batch's counts, rejections and progress in one transaction.

Called from :class:`consumer.sinks.TableOutput` inside ``foreachBatch``, on the driver, after
the batch's table has been collected. Spark commits a batch only after ``foreachBatch``
returns, so a crash between this transaction and Spark's commit replays the batch, and the
replay writes exactly the same rows again (all keyed by period, reason or batch id).

What the progress row can know inside ``foreachBatch``: the batch's own observed metrics
(``batch``/``unique`` in :func:`consumer.job.counting_query`) reach the driver only after
the batch, through the query listener, so they cannot be in this transaction. Everything
in the row is therefore derived from facts a replay reproduces:

- ``records_read``: the batch's offset range, from Spark's offset log in the checkpoint
  (end offsets of this batch minus those of the previous one). Offsets count records on a
  topic written without transactions, as this pipeline's producer does;
- ``rejected``: the growth of the state's rejected total since the previous batch's row;
- ``repeats_dropped``: records read minus what the state grew by (valid and rejected): the
  repeated event ids that deduplication dropped;
- ``batch_time``: Spark's batch timestamp from the offset log (kept on a replay);
- ``duration_s``: from the start of ``foreachBatch`` to this write, which includes reading
  Kafka and updating the state (``collect()`` runs the batch); it is the timing of the run
  that wrote the row, so a replay records its own.

SQLAlchemy is imported only when a database is in use, so the job still runs on a cluster
with pyspark alone when the database is off.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from consumer.errors import EXIT_FAILED, JobError
from consumer.retry import Backoff, RetriesExhaustedError, call_with_retries
from contract.tables import (
    COUNTS_TABLE,
    DB_TABLES,
    PROGRESS_TABLE,
    REJECTED_TABLE,
)

Offsets = dict[str, dict[str, int]]  # topic -> partition -> next offset
EXIT_DATABASE = 3  # like an unreachable Kafka: something outside the job is not there


@dataclass(frozen=True)
class OffsetLogEntry:
    """One file of Spark's offset log: when the batch was planned, where it ends, and the
    event-time watermark it was planned with (0 without one: no deduplication)."""

    batch_time: datetime
    offsets: Offsets
    watermark_ms: int = 0

    @property
    def timestamp_ms(self) -> int:
        """``batchTimestampMs``: the driver's clock when it planned the batch."""
        return round(self.batch_time.timestamp() * 1000)


def parse_offset_log(text: str) -> OffsetLogEntry:
    """An offset-log file: ``v1``, the batch metadata JSON, then the source's offsets JSON.

    The metadata holds ``batchTimestampMs`` and ``batchWatermarkMs``, which Spark keeps when
    it replays a batch.
    """
    lines = text.strip().splitlines()
    if len(lines) < 3 or not lines[0].startswith("v"):
        raise ValueError(f"not an offset-log entry: {text[:200]!r}")
    metadata = json.loads(lines[1])
    stamp = datetime.fromtimestamp(metadata["batchTimestampMs"] / 1000, tz=timezone.utc)
    watermark = int(metadata.get("batchWatermarkMs", 0))
    return OffsetLogEntry(stamp, _as_offsets(json.loads(lines[-1])), watermark)


def parse_initial_offsets(text: str) -> Offsets:
    """The source's initial offsets (``sources/0/0``): its last line is the offsets JSON."""
    return _as_offsets(json.loads(text.strip().splitlines()[-1]))


def _as_offsets(raw: Mapping[str, Mapping[str, Any]]) -> Offsets:
    return {topic: {str(p): int(o) for p, o in parts.items()} for topic, parts in raw.items()}


def records_between(start: Offsets, end: Offsets) -> int:
    """How many offsets the batch read: ``end - start`` summed over every partition.

    A partition that appeared during the batch starts at offset 0.
    """
    return sum(
        offset - start.get(topic, {}).get(partition, 0)
        for topic, parts in end.items()
        for partition, offset in parts.items()
    )


@dataclass(frozen=True)
class Totals:
    """What the state has counted since the checkpoint began: valid logins and rejections."""

    logins: int
    rejected: int


def progress_row(
    batch_id: int,
    topic: str,
    period_kind: str,
    entry: OffsetLogEntry,
    start: Offsets | None,
    totals: Totals,
    previous: Totals | None,
    duration_s: float,
    written_at: datetime,
) -> dict[str, Any]:
    """The batch-progress row (columns in ``contract.tables.DB_TABLES``).

    ``previous`` is the previous batch's totals (zero for batch 0); None when the database
    does not have that row (e.g. a new database on an old checkpoint): then the per-batch
    rejected and repeated counts are unknown (NULL), not guessed.
    """
    read = records_between(start, entry.offsets) if start is not None else None
    rejected = repeats = None
    if previous is not None:
        rejected = totals.rejected - previous.rejected
        if read is not None:
            repeats = read - (totals.logins - previous.logins) - rejected
    return {
        "batch_id": batch_id,
        "topic": topic,
        "period_kind": period_kind,
        "batch_time": entry.batch_time,
        "written_at": written_at,
        "records_read": read,
        "rejected": rejected,
        "repeats_dropped": repeats,
        "total_logins": totals.logins,
        "total_rejected": totals.rejected,
        "duration_s": round(duration_s, 3),
        "records_per_s": round(read / duration_s, 1) if read and duration_s > 0 else None,
        "end_offsets": json.dumps(entry.offsets, sort_keys=True),
    }


def masked(url: str) -> str:
    """The URL without its password, for messages and logs."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def build_metadata() -> Any:
    """SQLAlchemy tables from the contract's column lists (``contract.tables.DB_TABLES``)."""
    import sqlalchemy as sa

    types = {
        "text": sa.Text,
        "integer": sa.BigInteger,
        "float": sa.Float,
        "timestamp": lambda: sa.DateTime(timezone=True),
    }
    metadata = sa.MetaData()
    for name, columns in DB_TABLES.items():
        sa.Table(
            name,
            metadata,
            *(
                sa.Column(
                    c.name,
                    types[c.kind](),
                    nullable=c.nullable,
                    primary_key=c.primary_key,
                    autoincrement=False,
                )
                for c in columns
            ),
        )
    return metadata


def create_db_engine(url: str) -> Any:
    """An engine for ``url``; SQLite gets its folder created and write-ahead logging, so
    the dashboard can read while the job writes.

    A SQLite file is opened anew for every batch (no pool): nothing of the job holds it
    between batches, so a backup, a file system remounted read-only and back, or a lock
    taken by another process meet a fresh connection on the next attempt.
    """
    import sqlalchemy as sa

    # Closing a pooled connection to a server that went away fails; the pool logs that with
    # a traceback (to stderr, through logging's last resort). The write's retry says what
    # happened in one line instead.
    logging.getLogger("sqlalchemy.pool").setLevel(logging.CRITICAL)
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            engine.dispose()
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

        @sa.event.listens_for(engine, "connect")
        def _pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.close()

    return engine


# How long one SQLite attempt waits for another process's lock before it counts as failed.
SQLITE_BUSY_TIMEOUT_MS = 10_000

# SQLSTATE classes of errors that go away by themselves: connection exceptions (08),
# insufficient resources (53), operator intervention such as a server shutting down or
# starting up (57), and a transaction rolled back by a serialization failure or a
# deadlock (40). Others (permissions, a missing column, bad data) need a person.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, as pg8000 (``args[0]["C"]``) or psycopg report it."""
    orig = getattr(exc, "orig", None)
    for attribute in ("sqlstate", "pgcode"):
        code = getattr(orig, attribute, None)
        if isinstance(code, str):
            return code
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], Mapping) and isinstance(args[0].get("C"), str):
        return args[0]["C"]
    return None


# SQLite's result codes that waiting may cure: another process's lock, a file that cannot be
# opened or written right now (a read-only remount, a full disk, an I/O error). SQLite
# reports these, and also a missing table or a syntax error, as OperationalError.
TRANSIENT_SQLITE_CODES = ("BUSY", "LOCKED", "READONLY", "CANTOPEN", "IOERR", "FULL", "PROTOCOL")
TRANSIENT_SQLITE_TEXTS = (
    "locked", "readonly", "unable to open", "disk i/o error", "full", "busy"
)  # fmt: skip


def is_transient(exc: BaseException) -> bool:
    """True for a database error that waiting may cure: the server down or restarting, a
    lost connection, a lock held by someone else, a read-only or full disk."""
    import sqlalchemy as sa

    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = getattr(exc, "orig", None)
    if isinstance(orig, sqlite3.Error):
        name = getattr(orig, "sqlite_errorname", None)  # Python 3.11+: SQLITE_BUSY, ...
        if name is not None:
            return name.removeprefix("SQLITE_").split("_")[0] in TRANSIENT_SQLITE_CODES
        return any(text in str(orig).lower() for text in TRANSIENT_SQLITE_TEXTS)
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)):
        return True
    code = sqlstate(exc)
    return code is not None and code[:2] in TRANSIENT_SQLSTATE_CLASSES


def describe(exc: BaseException) -> str:
    """``ErrorType: first line`` of the database's own error, for one-line messages."""
    cause = getattr(exc, "orig", None) or exc
    first_line = (str(cause).strip().splitlines() or [""])[0][:300]
    return f"{type(cause).__name__}: {first_line}"


class DatabaseOutput:
    """Writes every batch's tables and one progress row to a SQLAlchemy database.

    A write that fails because the database is away (:func:`is_transient`) is tried again,
    with pauses, for ``retry_timeout_s`` seconds; the transaction is keyed by batch id, so
    a retry writes the same rows. Past that, or on any other database error, the write
    raises one :class:`JobError` (exit 3) and nothing of the batch is in the database.
    """

    def __init__(
        self,
        url: str,
        topic: str,
        period_kind: str,
        checkpoint_dir: Path,
        retry_timeout_s: float = 60,
    ) -> None:
        try:
            import sqlalchemy as sa
        except ImportError:
            raise JobError(
                "--db-url needs SQLAlchemy on the driver: pip install '.[db]' "
                "(or pass --db-url off)",
                EXIT_FAILED,
            ) from None
        self.url = url
        self.topic = topic
        self.period_kind = period_kind
        self.offsets_dir = checkpoint_dir / "offsets"
        self.initial_offsets = checkpoint_dir / "sources" / "0" / "0"
        self.metadata = build_metadata()
        self.backoff = Backoff(retry_timeout_s)
        try:
            self.engine = create_db_engine(url)
            self.metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise JobError(
                f"the database at {masked(url)} cannot be used ({describe(exc)}). Start it, "
                "or fix --db-url / CONSUMER_DB_URL (--db-url off for CSV only).",
                EXIT_DATABASE,
            ) from None
        except ImportError as exc:  # the URL names a driver that is not installed
            raise JobError(
                f"the database driver for {masked(url)} is missing ({exc}); for PostgreSQL "
                "use postgresql+pg8000://, installed by pip install '.[db]'",
                EXIT_FAILED,
            ) from None
        print(f"Database: {masked(url)}", flush=True)

    def _start_offsets(self, batch_id: int) -> Offsets | None:
        try:
            if batch_id == 0:
                return parse_initial_offsets(self.initial_offsets.read_bytes().decode("utf-8"))
            text = (self.offsets_dir / str(batch_id - 1)).read_text()
            return parse_offset_log(text).offsets
        except (OSError, ValueError, KeyError):
            return None  # unknown: the row says NULL rather than a guess

    def write(
        self,
        batch_id: int,
        counts: Sequence[tuple[str, int, int, int]],
        rejected: Sequence[tuple[str, int]],
        started: float,
    ) -> None:
        """The batch's whole counts table, rejections and progress row, in one transaction,
        retried while the database is away (see the class).

        ``started`` is ``time.monotonic()`` when the batch reached ``foreachBatch``.
        """
        import sqlalchemy as sa

        where = masked(self.url)

        def failed(exc: BaseException, attempt: int) -> None:
            self.engine.dispose()  # pooled connections to a restarted server are dead
            if attempt == 1:
                print(
                    f"Database at {where} unavailable ({describe(exc)}); retrying batch "
                    f"{batch_id} for up to {self.backoff.timeout_s:g} s.",
                    flush=True,
                )

        try:
            outcome = call_with_retries(
                lambda: self._write_once(batch_id, counts, rejected, started),
                is_transient,
                self.backoff,
                failed,
            )
        except RetriesExhaustedError as exc:
            raise JobError(
                f"the database at {where} was unavailable for {exc.elapsed_s:.0f} s while "
                f"writing batch {batch_id} ({describe(exc.last)}), longer than "
                f"--db-retry-timeout {self.backoff.timeout_s:g}. Nothing of batch {batch_id} "
                "was written (the database and the CSV files hold the batch before it); rerun "
                "the same command once the database is back.",
                EXIT_DATABASE,
            ) from None
        except sa.exc.SQLAlchemyError as exc:
            raise JobError(
                f"the database at {where} refused batch {batch_id} ({describe(exc)}). Nothing "
                f"of batch {batch_id} was written; fix the database, then rerun the same "
                "command.",
                EXIT_DATABASE,
            ) from None
        if outcome.failed_attempts:
            print(
                f"Database at {where} available again after {outcome.elapsed_s:.1f} s: batch "
                f"{batch_id} written.",
                flush=True,
            )

    def _write_once(
        self,
        batch_id: int,
        counts: Sequence[tuple[str, int, int, int]],
        rejected: Sequence[tuple[str, int]],
        started: float,
    ) -> None:
        import sqlalchemy as sa

        tables = self.metadata.tables
        entry = parse_offset_log((self.offsets_dir / str(batch_id)).read_text())
        start = self._start_offsets(batch_id)
        totals = Totals(sum(r[1] for r in counts), sum(r[1] for r in rejected))
        progress = tables[PROGRESS_TABLE]
        with self.engine.begin() as conn:
            previous: Totals | None = Totals(0, 0)
            if batch_id > 0:
                row = conn.execute(
                    sa.select(progress.c.total_logins, progress.c.total_rejected).where(
                        progress.c.batch_id == batch_id - 1
                    )
                ).first()
                previous = Totals(row[0], row[1]) if row is not None else None
            count_rows = [
                {
                    "period_kind": self.period_kind,
                    "period": period,
                    "logins": logins,
                    "successful": successful,
                    "failed": failed,
                    "batch_id": batch_id,
                }
                for period, logins, successful, failed in counts
            ]
            counts_table = tables[COUNTS_TABLE]
            _upsert(conn, counts_table, count_rows, ("period_kind", "period"))
            # Rows this batch did not write belong to another checkpoint or period: gone.
            conn.execute(
                counts_table.delete().where(
                    (counts_table.c.batch_id != batch_id)
                    | (counts_table.c.period_kind != self.period_kind)
                )
            )
            rejected_table = tables[REJECTED_TABLE]
            reasons = [{"reason": r, "records": n, "batch_id": batch_id} for r, n in rejected]
            _upsert(conn, rejected_table, reasons, ("reason",))
            conn.execute(rejected_table.delete().where(rejected_table.c.batch_id != batch_id))
            row = progress_row(
                batch_id,
                self.topic,
                self.period_kind,
                entry,
                start,
                totals,
                previous,
                time.monotonic() - started,
                datetime.now(timezone.utc),
            )
            _upsert(conn, progress, [row], ("batch_id",))
            # Later batches can only be left by another checkpoint that used this database.
            conn.execute(progress.delete().where(progress.c.batch_id > batch_id))


def _upsert(conn: Any, table: Any, rows: list[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert ``rows``, replacing those with the same ``keys`` (SQLite and PostgreSQL have
    ``ON CONFLICT``; other databases get a delete of those keys first)."""
    import sqlalchemy as sa

    if not rows:
        return
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        statement = insert(table)
        others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        conn.execute(statement.on_conflict_do_update(index_elements=keys, set_=others), rows)
        return
    for row in rows:
        conn.execute(table.delete().where(sa.and_(*(table.c[k] == row[k] for k in keys))))
    conn.execute(table.insert(), rows)
