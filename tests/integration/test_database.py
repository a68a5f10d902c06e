"""The job's database sink on real Kafka and Spark: the rows equal the truth from the topic.

The database is read with Python's own sqlite3 (not the job's SQLAlchemy code), and every
expectation is computed from what was sent: the counts with tests/support/truth.py, the
per-batch figures from the job's listener lines (Spark's observed metrics), the end
offsets from the offsets Kafka acknowledged.
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from contract.tables import COUNTS_TABLE, PROGRESS_TABLE, REJECTED_TABLE
from tests.support.events import login as support_login
from tests.support.jobs import run_job
from tests.support.kafka import produce_with_metadata
from tests.support.truth import expected_counts

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def login(n: int, moment: datetime, success: bool = True) -> dict:
    return support_login(f"db-{n}", moment, f"u{n % 5}", success)


def read_db(path: Path) -> dict[str, list[dict]]:
    """Every row of the job's three tables, as dictionaries, through sqlite3."""
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return {
            table: [dict(r) for r in connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
            for table in (COUNTS_TABLE, REJECTED_TABLE, PROGRESS_TABLE)
        }
    finally:
        connection.close()


def counts_in(tables: dict[str, list[dict]]) -> dict[str, tuple[int, int, int]]:
    return {r["period"]: (r["logins"], r["successful"], r["failed"]) for r in tables[COUNTS_TABLE]}


LISTENER_LINE = re.compile(
    r"\[monthly_logins\] batch (\d+): ([\d,]+) records read, ([\d,]+) rejected, "
    r"([\d,]+) repeated event ids dropped"
)


def listener_lines(output: str) -> dict[int, tuple[int, int, int]]:
    """``batch -> (read, rejected, repeats)`` from Spark's observed metrics, as printed."""
    return {
        int(m[1]): tuple(int(v.replace(",", "")) for v in m.groups()[1:])
        for m in LISTENER_LINE.finditer(output)
    }


def end_offsets(placed: list[tuple[int, int]], topic: str) -> dict[str, dict[str, int]]:
    ends: dict[str, int] = {}
    for partition, offset in placed:
        ends[str(partition)] = max(ends.get(str(partition), 0), offset + 1)
    return {topic: ends}


def test_the_database_holds_the_truth_per_period_reason_and_batch(kafka_broker, topic, tmp_path):
    # Month edges in UTC: the last millisecond of 2025 and the first of 2026.
    moments = [
        datetime(2025, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc),
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        datetime(2026, 2, 28, 12, tzinfo=timezone.utc),
    ]
    good = [login(i, moments[i % 3], i % 6 != 0) for i in range(40)]
    bad = [
        b"not json",
        b"",
        json.dumps({"event_id": "x", "user_id": "u", "success": True}).encode(),
    ]
    repeat = json.dumps(good[3]).encode()
    values = [json.dumps(e).encode() for e in good] + bad + [repeat]
    placed = produce_with_metadata(kafka_broker.bootstrap_servers, topic, values)

    run = run_job(kafka_broker, topic, tmp_path, "--max-offsets-per-trigger", "9")
    db = tmp_path / "output" / "logins.db"
    assert f"Database: sqlite:///{db}" in run.output
    tables = read_db(db)
    counted = {
        r["period"]: (r["logins"], r["successful"], r["failed"]) for r in tables[COUNTS_TABLE]
    }
    assert counted == expected_counts(good) == run.monthly
    assert {r["period_kind"] for r in tables[COUNTS_TABLE]} == {"month"}
    rejected = {r["reason"]: r["records"] for r in tables[REJECTED_TABLE]}
    assert rejected == {"not_json_object": 1, "empty_value": 1, "missing_timestamp": 1}

    progress = tables[PROGRESS_TABLE]
    listener = listener_lines(run.output)
    assert [r["batch_id"] for r in progress] == sorted(listener) == list(range(len(listener)))
    assert len(progress) >= len(values) // 9
    for row in progress:  # offsets and totals give the same figures as Spark's own metrics
        figures = (row["records_read"], row["rejected"], row["repeats_dropped"])
        assert figures == listener[row["batch_id"]], row
        assert row["topic"] == topic and row["period_kind"] == "month"
        assert row["duration_s"] > 0 and row["records_per_s"] > 0
    assert sum(r["records_read"] for r in progress) == len(values)
    assert sum(r["repeats_dropped"] for r in progress) == 1
    last = progress[-1]
    assert json.loads(last["end_offsets"]) == end_offsets(placed, topic)
    assert (last["total_logins"], last["total_rejected"]) == (len(good), len(bad))
    batch_times = [r["batch_time"] for r in progress]
    assert batch_times == sorted(batch_times)

    # A second run on the same checkpoint continues the same rows and batch ids.
    more = [login(100 + i, datetime(2026, 3, 2, tzinfo=timezone.utc), i % 2 == 0) for i in range(5)]
    placed += produce_with_metadata(
        kafka_broker.bootstrap_servers, topic, [json.dumps(e).encode() for e in more]
    )
    again = run_job(kafka_broker, topic, tmp_path)
    tables = read_db(db)
    counted = {
        r["period"]: (r["logins"], r["successful"], r["failed"]) for r in tables[COUNTS_TABLE]
    }
    assert counted == expected_counts(good + more) == again.monthly
    (new,) = [r for r in tables[PROGRESS_TABLE] if r["batch_id"] == len(listener)]
    assert (new["records_read"], new["rejected"], new["repeats_dropped"]) == (5, 0, 0)
    assert json.loads(new["end_offsets"]) == end_offsets(placed, topic)


def test_db_url_off_writes_no_database_and_a_bad_database_stops_before_the_first_batch(
    kafka_broker, topic, tmp_path
):
    produce_with_metadata(
        kafka_broker.bootstrap_servers,
        topic,
        [json.dumps(login(1, datetime(2024, 1, 1, tzinfo=timezone.utc))).encode()],
    )
    off = run_job(kafka_broker, topic, tmp_path / "off", "--db-url", "off")
    assert off.monthly == {"2024-01": (1, 1, 0)}
    assert not (tmp_path / "off" / "output" / "logins.db").exists()

    url = "postgresql+pg8000://job:s3cret@127.0.0.1:1/logins"
    refused = run_job(kafka_broker, topic, tmp_path / "pg", "--db-url", url, check=False)
    assert refused.result.returncode == 3, refused.output[-3000:]
    assert "error: the database at postgresql+pg8000://job:***@127.0.0.1:1/logins" in (
        refused.output
    )
    assert "s3cret" not in refused.output and "Traceback" not in refused.output
    assert not (tmp_path / "pg" / "output" / "monthly_logins.csv").exists()
