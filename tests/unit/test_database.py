"""The database sink without Spark: offset-log parsing, the progress row, and idempotent
writes to a real SQLite file from a checkpoint laid out the way Spark writes it."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from consumer.database import (
    EXIT_DATABASE,
    DatabaseOutput,
    OffsetLogEntry,
    Totals,
    build_metadata,
    create_db_engine,
    describe,
    is_transient,
    masked,
    parse_initial_offsets,
    parse_offset_log,
    progress_row,
    records_between,
    sqlstate,
)
from consumer.errors import JobError
from contract.tables import COUNTS_TABLE, DB_TABLES, PROGRESS_TABLE, REJECTED_TABLE

STAMP_MS = 1_764_000_000_123


def offset_log(offsets: dict, stamp_ms: int = STAMP_MS) -> str:
    """An offsets/<batch> file as Spark 4 writes it."""
    metadata = {"batchWatermarkMs": 0, "batchTimestampMs": stamp_ms, "conf": {"x": "1"}}
    return f"v1\n{json.dumps(metadata)}\n{json.dumps(offsets)}"


def test_an_offset_log_entry_gives_the_batch_time_and_the_end_offsets():
    entry = parse_offset_log(offset_log({"t": {"1": 7, "0": 12}}))
    assert entry.batch_time == datetime(2025, 11, 24, 16, 0, 0, 123000, tzinfo=timezone.utc)
    assert entry.offsets == {"t": {"0": 12, "1": 7}}


def test_the_initial_offsets_file_is_read_from_its_last_line():
    # Spark prefixes the file with a version line (and, from old versions, a NUL byte).
    assert parse_initial_offsets('\x00v1\n{"t":{"0":0,"1":3}}\n') == {"t": {"0": 0, "1": 3}}


@pytest.mark.parametrize("text", ["", "v1\n{}", '{"t": {"0": 1}}'])
def test_a_file_that_is_not_an_offset_log_entry_is_refused(text):
    with pytest.raises(ValueError):
        parse_offset_log(text)


def test_records_between_sums_every_partition_and_new_partitions_start_at_zero():
    start = {"t": {"0": 10, "1": 5}}
    end = {"t": {"0": 15, "1": 5, "2": 4}}
    assert records_between(start, end) == 5 + 0 + 4


def entry(offsets: dict) -> OffsetLogEntry:
    return OffsetLogEntry(datetime(2026, 1, 1, tzinfo=timezone.utc), offsets)


def test_the_progress_row_derives_rejected_and_repeats_from_the_totals():
    row = progress_row(
        3, "t", "month", entry({"t": {"0": 110}}), {"t": {"0": 10}},
        Totals(logins=1090, rejected=7), Totals(logins=1000, rejected=4), 2.0,
        datetime(2026, 1, 1, 0, 0, 2, tzinfo=timezone.utc),
    )  # fmt: skip
    assert row["records_read"] == 100
    assert row["rejected"] == 3
    assert row["repeats_dropped"] == 100 - 90 - 3
    assert row["records_per_s"] == 50.0
    assert json.loads(row["end_offsets"]) == {"t": {"0": 110}}
    assert set(row) == {c.name for c in DB_TABLES[PROGRESS_TABLE]}


@pytest.mark.parametrize(
    ("read", "duration_s", "rate"),
    [(100, 0.7, 142.9), (100, 0.5, 200.0), (100, 1.0, 100.0), (0, 2.0, None), (7, 0.0, None)],
)
def test_the_batch_rate_is_rounded_to_a_tenth_and_unknown_without_records_or_time(
    read, duration_s, rate
):
    row = progress_row(
        1, "t", "month", entry({"t": {"0": read}}), {}, Totals(0, 0), Totals(0, 0), duration_s,
        datetime(2026, 1, 1, tzinfo=timezone.utc),
    )  # fmt: skip
    assert row["records_per_s"] == rate
    assert row["duration_s"] == round(duration_s, 3)


def test_the_duration_keeps_milliseconds_and_the_offsets_are_written_sorted():
    row = progress_row(
        1, "t", "month", entry({"t": {"1": 3, "0": 2}, "a": {"0": 1}}), {"t": {"0": 1}},
        Totals(0, 0), Totals(0, 0), 1.23456, datetime(2026, 1, 1, tzinfo=timezone.utc),
    )  # fmt: skip
    assert row["duration_s"] == 1.235
    assert row["end_offsets"] == '{"a": {"0": 1}, "t": {"0": 2, "1": 3}}'
    assert row["records_read"] == 1 + 3 + 1  # a topic and a partition not in start: from 0


def test_without_the_previous_row_the_per_batch_counts_are_unknown_not_guessed():
    row = progress_row(
        3, "t", "month", entry({"t": {"0": 5}}), None, Totals(5, 0), None, 0.0,
        datetime(2026, 1, 1, tzinfo=timezone.utc),
    )  # fmt: skip
    assert row["records_read"] is None
    assert (row["rejected"], row["repeats_dropped"], row["records_per_s"]) == (None, None, None)
    assert row["total_logins"] == 5


def test_the_password_never_appears_in_messages():
    assert masked("postgresql+pg8000://job:s3cret@db:5432/logins") == (
        "postgresql+pg8000://job:***@db:5432/logins"
    )


class Checkpoint:
    """The query's checkpoint folder with the files the sink reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "offsets").mkdir(parents=True)
        (root / "sources" / "0").mkdir(parents=True)
        (root / "sources" / "0" / "0").write_bytes(b'\x00v1\n{"t":{"0":0,"1":0}}')

    def batch(self, batch_id: int, offsets: dict, stamp_ms: int = STAMP_MS) -> None:
        (self.root / "offsets" / str(batch_id)).write_text(offset_log(offsets, stamp_ms))


def rows(engine: sa.Engine, table: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY 1, 2"))]


def test_batches_and_a_replayed_batch_write_exactly_the_checkpoints_state(tmp_path):
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    url = f"sqlite:///{tmp_path / 'out' / 'logins.db'}"
    sink = DatabaseOutput(url, "t", "month", checkpoint.root)
    checkpoint.batch(0, {"t": {"0": 6, "1": 4}})
    sink.write(0, [("2026-01", 5, 4, 1), ("2026-02", 3, 3, 0)], [("empty_value", 1)], 0.0)
    checkpoint.batch(1, {"t": {"0": 9, "1": 5}}, STAMP_MS + 2000)
    counts = [("2026-01", 5, 4, 1), ("2026-02", 6, 5, 1)]
    sink.write(1, counts, [("empty_value", 1)], time.monotonic())
    engine = sa.create_engine(url)
    before = [rows(engine, t) for t in (COUNTS_TABLE, REJECTED_TABLE)]
    progress = rows(engine, PROGRESS_TABLE)
    assert before == [
        [("month", "2026-01", 5, 4, 1, 1), ("month", "2026-02", 6, 5, 1, 1)],
        [("empty_value", 1, 1)],
    ]
    # batch 0 read 10 records: 8 counted, 1 rejected, so 1 repeat dropped; batch 1 read 4:
    # 3 new logins, no new rejection, 1 repeat.
    by_batch = {r[0]: r for r in progress}
    columns = [c.name for c in DB_TABLES[PROGRESS_TABLE]]
    pick = [columns.index(c) for c in ("records_read", "rejected", "repeats_dropped")]
    assert [[by_batch[b][i] for i in pick] for b in (0, 1)] == [[10, 1, 1], [4, 0, 1]]

    # A crash after the database commit but before Spark's: the batch is replayed.
    sink.write(1, counts, [("empty_value", 1)], time.monotonic())
    assert [rows(engine, t) for t in (COUNTS_TABLE, REJECTED_TABLE)] == before
    replayed = rows(engine, PROGRESS_TABLE)
    timing = {columns.index(c) for c in ("written_at", "duration_s", "records_per_s")}
    same = [[v for i, v in enumerate(r) if i not in timing] for r in replayed]
    assert same == [[v for i, v in enumerate(r) if i not in timing] for r in progress]


def test_a_new_checkpoint_on_an_old_database_leaves_nothing_of_the_old_run(tmp_path):
    url = f"sqlite:///{tmp_path / 'logins.db'}"
    old = Checkpoint(tmp_path / "old")
    sink = DatabaseOutput(url, "t", "week", old.root)
    for batch_id in range(3):
        old.batch(batch_id, {"t": {"0": batch_id + 1}})
        sink.write(batch_id, [("2026-W01", batch_id + 1, 1, batch_id)], [("oversized", 1)], 0.0)
    new = Checkpoint(tmp_path / "new")
    new.batch(0, {"t": {"0": 2, "1": 0}})
    DatabaseOutput(url, "t", "month", new.root).write(0, [("2026-01", 2, 2, 0)], [], 0.0)
    engine = sa.create_engine(url)
    assert rows(engine, COUNTS_TABLE) == [("month", "2026-01", 2, 2, 0, 0)]
    assert rows(engine, REJECTED_TABLE) == []
    assert [r[0] for r in rows(engine, PROGRESS_TABLE)] == [0]


def test_an_unreachable_database_stops_the_job_with_a_clear_message(tmp_path):
    url = "postgresql+pg8000://job:s3cret@127.0.0.1:1/logins"
    with pytest.raises(JobError) as error:
        DatabaseOutput(url, "t", "month", tmp_path)
    assert error.value.exit_code == EXIT_DATABASE
    message = str(error.value)
    assert message.startswith("the database at postgresql+pg8000://job:***@127.0.0.1:1/logins ")
    assert "s3cret" not in message
    assert "--db-url off for CSV only" in message


def test_a_driver_that_is_not_installed_is_named(tmp_path):
    with pytest.raises(JobError) as error:
        DatabaseOutput("postgresql+psycopg2://job@127.0.0.1/logins", "t", "month", tmp_path)
    assert "use postgresql+pg8000://" in str(error.value)


# --- The database away for a while ------------------------------------------------------------


class PgError(Exception):
    """What pg8000 raises for a server error: a dict of fields, the SQLSTATE under "C"."""


def wrapped(error_class: type[sa.exc.DBAPIError], orig: Exception) -> sa.exc.DBAPIError:
    return error_class("INSERT ...", {}, orig)


def sqlite_error(message: str, code: str) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorname = f"SQLITE_{code}"
    return error


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (wrapped(sa.exc.OperationalError, sqlite_error("database is locked", "BUSY")), True),
        (
            wrapped(
                sa.exc.OperationalError,
                sqlite_error("attempt to write a readonly database", "READONLY_DBMOVED"),
            ),
            True,
        ),
        (
            wrapped(
                sa.exc.OperationalError, sqlite_error("unable to open database file", "CANTOPEN")
            ),
            True,
        ),
        (wrapped(sa.exc.OperationalError, sqlite_error("disk I/O error", "IOERR_WRITE")), True),
        (wrapped(sa.exc.OperationalError, sqlite_error("no such table: x", "ERROR")), False),
        (wrapped(sa.exc.OperationalError, Exception("server closed the connection")), True),
        (wrapped(sa.exc.InterfaceError, Exception("Can't create a connection to host")), True),
        (
            wrapped(sa.exc.DatabaseError, PgError({"C": "57P01", "M": "terminating connection"})),
            True,
        ),
        (
            wrapped(
                sa.exc.DatabaseError, PgError({"C": "57P03", "M": "the database is starting up"})
            ),
            True,
        ),
        (wrapped(sa.exc.DatabaseError, PgError({"C": "08006"})), True),
        (wrapped(sa.exc.DatabaseError, PgError({"C": "40P01", "M": "deadlock detected"})), True),
        (
            wrapped(sa.exc.ProgrammingError, PgError({"C": "42501", "M": "permission denied"})),
            False,
        ),
        (wrapped(sa.exc.IntegrityError, PgError({"C": "23505"})), False),
        (wrapped(sa.exc.DatabaseError, Exception("no SQLSTATE")), False),
        (ValueError("not a database error"), False),
    ],
)
def test_what_waiting_may_cure_is_retried_and_nothing_else(error, transient):
    assert is_transient(error) is transient


def test_an_invalidated_connection_is_retried():
    error = wrapped(sa.exc.DatabaseError, Exception("network error"))
    error.connection_invalidated = True
    assert is_transient(error)
    assert sqlstate(wrapped(sa.exc.DatabaseError, PgError({"C": "57P01"}))) == "57P01"
    assert sqlstate(ValueError()) is None


@pytest.fixture
def quick_sqlite(monkeypatch):
    """SQLite attempts that give up on a lock after 0.1 s instead of 10 s."""
    monkeypatch.setattr("consumer.database.SQLITE_BUSY_TIMEOUT_MS", 100)


def hold_lock(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_a_locked_database_is_retried_and_written_once_free(tmp_path, quick_sqlite, capsys):
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    checkpoint.batch(0, {"t": {"0": 3, "1": 0}})
    path = tmp_path / "logins.db"
    url = f"sqlite:///{path}"
    sink = DatabaseOutput(url, "t", "month", checkpoint.root, retry_timeout_s=30)
    other = hold_lock(path)
    threading.Timer(1.0, lambda: other.execute("COMMIT")).start()
    sink.write(0, [("2026-01", 3, 2, 1)], [], time.monotonic())
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        f"Database at {url} unavailable (OperationalError: database is locked); retrying "
        "batch 0 for up to 30 s."
    )
    assert re.fullmatch(
        rf"Database at {re.escape(url)} available again after \d+\.\d s: batch 0 written\.", out[2]
    )
    assert rows(sa.create_engine(url), COUNTS_TABLE) == [("month", "2026-01", 3, 2, 1, 0)]
    other.close()


def test_a_database_locked_past_the_bound_stops_with_nothing_written(tmp_path, quick_sqlite):
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    checkpoint.batch(0, {"t": {"0": 3, "1": 0}})
    path = tmp_path / "logins.db"
    url = f"sqlite:///{path}"
    sink = DatabaseOutput(url, "t", "month", checkpoint.root, retry_timeout_s=1)
    other = hold_lock(path)
    started = time.monotonic()
    with pytest.raises(JobError) as error:
        sink.write(0, [("2026-01", 3, 2, 1)], [], started)
    assert 1 <= time.monotonic() - started < 3
    other.execute("COMMIT")
    other.close()
    assert error.value.exit_code == EXIT_DATABASE
    assert re.fullmatch(
        rf"the database at {re.escape(url)} was unavailable for 1 s while writing batch 0 "
        r"\(OperationalError: database is locked\), longer than --db-retry-timeout 1\. Nothing "
        r"of batch 0 was written \(the database and the CSV files hold the batch before it\); "
        r"rerun the same command once the database is back\.",
        str(error.value),
    )
    assert rows(sa.create_engine(url), COUNTS_TABLE) == []


def test_a_database_error_that_needs_a_person_is_not_retried(tmp_path):
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    checkpoint.batch(0, {"t": {"0": 3, "1": 0}})
    url = f"sqlite:///{tmp_path / 'logins.db'}"
    sink = DatabaseOutput(url, "t", "month", checkpoint.root, retry_timeout_s=60)
    with sa.create_engine(url).begin() as conn:
        conn.execute(sa.text(f"DROP TABLE {COUNTS_TABLE}"))
        conn.execute(sa.text(f"CREATE TABLE {COUNTS_TABLE} (period TEXT)"))
    started = time.monotonic()
    with pytest.raises(JobError) as error:
        sink.write(0, [("2026-01", 3, 2, 1)], [], started)
    assert time.monotonic() - started < 5
    assert str(error.value).startswith(f"the database at {url} refused batch 0 (")
    assert error.value.exit_code == EXIT_DATABASE


# --- The pure parts, exactly ------------------------------------------------------------------


def test_sqlstate_is_read_from_psycopg_attributes_and_pg8000_fields():
    class Psycopg3Error(Exception):
        sqlstate = "57P01"

    class Psycopg2Error(Exception):
        pgcode = "08006"

    class NotTextError(Exception):
        sqlstate = 57  # not a SQLSTATE: ignored

    assert sqlstate(wrapped(sa.exc.DatabaseError, Psycopg3Error())) == "57P01"
    assert sqlstate(wrapped(sa.exc.DatabaseError, Psycopg2Error())) == "08006"
    assert sqlstate(wrapped(sa.exc.DatabaseError, NotTextError())) is None
    assert sqlstate(wrapped(sa.exc.DatabaseError, PgError({"C": 8006}))) is None
    assert sqlstate(wrapped(sa.exc.DatabaseError, PgError("08006"))) is None
    assert sqlstate(wrapped(sa.exc.DatabaseError, PgError())) is None


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("database is locked", True),
        ("attempt to write a readonly database", True),
        ("unable to open database file", True),
        ("disk I/O error", True),
        ("database or disk is full", True),
        ("database table is busy", True),
        ("no such table: x", False),
    ],
)
def test_without_an_error_name_sqlites_message_decides(message, transient):
    """Python 3.10's sqlite3 errors have no ``sqlite_errorname``."""
    error = sqlite3.OperationalError(message)
    assert not hasattr(error, "sqlite_errorname") or error.sqlite_errorname is None
    if hasattr(error, "sqlite_errorname"):
        del error.sqlite_errorname
    assert is_transient(wrapped(sa.exc.OperationalError, error)) is transient


@pytest.mark.parametrize("code", ["LOCKED", "FULL", "PROTOCOL", "BUSY_TIMEOUT"])
def test_every_sqlite_code_that_waiting_may_cure(code):
    assert is_transient(wrapped(sa.exc.OperationalError, sqlite_error("x", code)))


def test_a_timeout_of_the_pool_is_transient():
    assert is_transient(sa.exc.TimeoutError("QueuePool limit reached"))


def test_the_description_is_the_type_and_the_first_line_of_the_cause():
    cause = PgError("x" * 400 + "\nDETAIL: more")
    assert describe(wrapped(sa.exc.DatabaseError, cause)) == "PgError: " + "x" * 300
    assert describe(ValueError("  bad  \n")) == "ValueError: bad"
    assert describe(ValueError()) == "ValueError: "


def test_the_tables_have_the_contracts_columns_and_types():
    metadata = build_metadata()
    assert sorted(metadata.tables) == sorted(DB_TABLES)
    kinds = {"text": sa.Text, "integer": sa.BigInteger, "float": sa.Float, "timestamp": sa.DateTime}
    for name, columns in DB_TABLES.items():
        table = metadata.tables[name]
        assert [c.name for c in table.columns] == [c.name for c in columns]
        for column in columns:
            made = table.c[column.name]
            assert type(made.type) is kinds[column.kind]
            assert (made.nullable, made.primary_key) == (column.nullable, column.primary_key)
            assert made.autoincrement is False
    assert metadata.tables[PROGRESS_TABLE].c.batch_time.type.timezone is True


def test_sqlite_is_written_with_write_ahead_logging_a_busy_wait_and_no_pool(tmp_path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'new' / 'logins.db'}")
    assert (tmp_path / "new").is_dir()
    assert isinstance(engine.pool, sa.pool.NullPool)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    memory = create_db_engine("sqlite://")
    assert not isinstance(memory.pool, sa.pool.NullPool)


def test_unknown_start_offsets_make_a_null_count_not_a_guess(tmp_path):
    checkpoint = Checkpoint(tmp_path / "checkpoint")
    (checkpoint.root / "sources" / "0" / "0").unlink()
    sink = DatabaseOutput(f"sqlite:///{tmp_path / 'logins.db'}", "t", "month", checkpoint.root)
    assert sink._start_offsets(0) is None
    assert sink._start_offsets(3) is None  # no offsets/2
    checkpoint.batch(2, {"t": {"0": 4}})
    assert sink._start_offsets(3) == {"t": {"0": 4}}
    (checkpoint.root / "offsets" / "4").write_text("not an offset log")
    assert sink._start_offsets(5) is None
