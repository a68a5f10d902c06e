"""A job database written without Spark: the sink fed from a checkpoint laid out by hand."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

from consumer.database import DatabaseOutput
from contract.tables import COUNTS_TABLE, PROGRESS_TABLE

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def write_job_batches(
    tmp_path: Path,
    period_kind: str,
    batches: Iterable[tuple[int, list[tuple], list[tuple], float]],
) -> str:
    """The job's SQLite database after ``batches``, written by its own sink on a checkpoint
    of topic ``t`` (one partition): each batch is (the partition's end offset, counts,
    rejected reasons, duration in s), batch i at T0 + 10 i seconds. Returns the database URL."""
    root = tmp_path / "checkpoint"
    (root / "offsets").mkdir(parents=True)
    (root / "sources" / "0").mkdir(parents=True)
    (root / "sources" / "0" / "0").write_text('v1\n{"t":{"0":0}}')
    url = f"sqlite:///{tmp_path / 'logins.db'}"
    sink = DatabaseOutput(url, "t", period_kind, root)
    for batch_id, (end, counts, rejected, duration_s) in enumerate(batches):
        stamp = int(T0.timestamp() * 1000) + batch_id * 10_000
        metadata = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": stamp})
        (root / "offsets" / str(batch_id)).write_text(f'v1\n{metadata}\n{{"t":{{"0":{end}}}}}')
        sink.write(batch_id, counts, rejected, duration_s)
    return url


def written_database(tmp_path: Path) -> str:
    """Two batches of ISO weeks, as the job writes them: W47 60 (57/3), W48 98 (90/8);
    2 records rejected as oversized; batch 1 read 60 records 10 s after batch 0."""
    return write_job_batches(
        tmp_path,
        "week",
        (
            (n, [("2026-W47", 60, 57, 3), ("2026-W48", n - 62, n - 70, 8)], [("oversized", 2)], 0.0)
            for n in (100, 160)
        ),
    )


def read_job_database(path: Path) -> dict[str, list[dict]]:
    """The job's counts and progress tables through Python's sqlite3 (not the job's code)."""
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return {
            "counts": [dict(r) for r in connection.execute(f"SELECT * FROM {COUNTS_TABLE}")],
            "progress": [
                dict(r)
                for r in connection.execute(f"SELECT * FROM {PROGRESS_TABLE} ORDER BY batch_id")
            ],
        }
    finally:
        connection.close()
