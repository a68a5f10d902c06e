"""A job database written without Spark: the sink fed from a checkpoint laid out by hand."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from consumer.database import DatabaseOutput
from contract.tables import COUNTS_TABLE, PROGRESS_TABLE

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)


def written_database(tmp_path: Path) -> str:
    """Two batches of ISO weeks, as the job writes them: W47 60 (57/3), W48 98 (90/8);
    2 records rejected as oversized; batch 1 read 60 records 10 s after batch 0."""
    root = tmp_path / "checkpoint"
    (root / "offsets").mkdir(parents=True)
    (root / "sources" / "0").mkdir(parents=True)
    (root / "sources" / "0" / "0").write_text('v1\n{"t":{"0":0}}')
    url = f"sqlite:///{tmp_path / 'logins.db'}"
    sink = DatabaseOutput(url, "t", "week", root)
    for batch_id, n in enumerate((100, 160)):
        stamp = int(T0.timestamp() * 1000) + batch_id * 10_000
        metadata = json.dumps({"batchWatermarkMs": 0, "batchTimestampMs": stamp})
        (root / "offsets" / str(batch_id)).write_text(f'v1\n{metadata}\n{{"t":{{"0":{n}}}}}')
        counts = [("2026-W47", 60, 57, 3), ("2026-W48", n - 62, n - 70, 8)]
        sink.write(batch_id, counts, [("oversized", 2)], 0.0)
    return url


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
