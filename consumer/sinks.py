"""Where each batch's result goes: the console table, the CSV files, the quarantine."""

from __future__ import annotations

import csv
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention

from consumer.checkpoint_log import check_batch_clock
from consumer.database import DatabaseOutput
from consumer.errors import JobError
from consumer.options import (
    QUERY_CHECKPOINT,
    JobOptions,
)
from consumer.transform import (
    classify_records,
    tables_from_outcomes,
)
from contract.tables import (
    DEFAULT_PERIOD,
    PERIODS,
    REJECTED_COLUMNS,
    REJECTED_CSV,
    Period,
    header,
    read_counts,
)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A text table in the style of Spark's console sink (numbers right-aligned)."""
    cells = [[str(c) for c in columns]] + [["" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    rule = "+" + "+".join("-" * w for w in widths) + "+"

    def line(row: Sequence[str], header: bool = False) -> str:
        parts = []
        for i, cell in enumerate(row):
            numeric = not header and i > 0
            parts.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "|" + "|".join(parts) + "|"

    body = [line(r) for r in cells[1:]]
    return "\n".join([rule, line(cells[0], header=True), rule, *body, rule])


def write_csv_atomically(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Replace ``path`` in one step, so readers never see half a table.

    Rewriting the whole table every batch makes the write idempotent: replaying a batch
    after a crash writes the same table again.
    """
    os.replace(stage_csv(path, header, rows), path)


def stage_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    """The table written to a temporary file beside ``path``, ready to be renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


class TableOutput:
    """foreachBatch sink of the aggregation: prints the table, writes the CSV files and the
    database, and has the batch's rejected records quarantined.

    The database (``--db-url``, by default SQLite in the output folder) is opened here,
    when the query is built, so an unreachable one stops the job before its first batch.

    Order within a batch, so that the CSV files and the database never hold different
    batches when the job ends: the CSV tables are written to temporary files first (a
    full disk fails here, before anything changed), then the database's transaction commits
    (retried while the database is away), then the files are renamed over the tables. A
    batch that fails on the way leaves both at the batch before it; Spark commits the batch
    only after this returns, so a rerun replays it.

    A :class:`JobError` raised here (the database gone for longer than its bound, a clock
    behind the checkpoint) is kept in ``failure`` as well: Spark wraps whatever
    ``foreachBatch`` raises in pages of Java and Python tracebacks, and the job reports this
    one line instead.
    """

    def __init__(self, options: JobOptions, quarantine: Quarantine | None = None) -> None:
        self.options = options
        self.quarantine = quarantine
        self.batches_written = 0
        self.failure: JobError | None = None
        self.query_dir = Path(options.checkpoint_dir) / QUERY_CHECKPOINT
        # Per batch, how many records it rejected (None: unknown, on an old checkpoint).
        self.rejected_in_batch: dict[int, int | None] = {}
        self.database = (
            DatabaseOutput(
                options.db_url,
                options.topic,
                options.period.key,
                self.query_dir,
                retry_timeout_s=options.db_retry_timeout_s,
            )
            if options.db_url
            else None
        )

    def __call__(self, outcomes: DataFrame, batch_id: int) -> None:
        try:
            self.write_batch(outcomes, batch_id)
        except JobError as exc:
            self.failure = exc
            raise

    def write_batch(self, outcomes: DataFrame, batch_id: int) -> None:
        # Before collect() runs the batch: a batch planned with a clock behind the
        # deduplication watermark would drop its events as late (consumer/checkpoint_log.py).
        check_batch_clock(self.query_dir, self.options.checkpoint_dir, batch_id)
        started = time.monotonic()  # collect() below runs the batch: read, dedupe, count
        tables = tables_from_outcomes(outcomes.collect())
        if self.quarantine is not None:
            rejected_total = sum(count for _, count in tables.rejected)
            previous = self.quarantine.after_batch(batch_id, rejected_total)
            self.rejected_in_batch[batch_id] = (
                None if previous is None else rejected_total - previous
            )
        period, zone = self.options.period, self.options.timezone
        staged: list[tuple[Path, Path]] = []
        try:
            if self.options.output_dir:
                out = Path(self.options.output_dir)
                for path, columns, rows in (
                    (out / period.csv_name, header(period), tables.counts),
                    (out / REJECTED_CSV, REJECTED_COLUMNS, tables.rejected),
                ):
                    staged.append((stage_csv(path, columns, rows), path))
            if self.database is not None:
                self.database.write(batch_id, tables.counts, tables.rejected, started)
            while staged:
                tmp, path = staged.pop(0)
                os.replace(tmp, path)
        finally:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
        print(format_report(batch_id, zone, tables.counts, tables.rejected, period), flush=True)
        self.batches_written += 1


def format_report(
    batch_id: int,
    zone: str,
    counts: Sequence[Sequence[Any]],
    rejected: Sequence[Sequence[Any]],
    period: Period = PERIODS[DEFAULT_PERIOD],
) -> str:
    """The console output of one batch: the table with totals, then the rejections."""
    total = [sum(r[i] for r in counts) for i in (1, 2, 3)]
    rows = [*counts, ("total", *total)] if counts else []
    heading = f"Batch {batch_id}: logins per {period.title} ({zone})"
    text = [heading, render_table(header(period), rows)]
    if not counts:
        text[1] = "(no valid events yet)"
    rejected_total = sum(r[1] for r in rejected)
    if rejected_total:
        detail = ", ".join(f"{reason} {count}" for reason, count in rejected)
        text.append(f"Rejected records: {rejected_total} ({detail})")
    else:
        text.append("Rejected records: 0")
    return "\n".join(text)


class Quarantine:
    """Rejected records, each with its reason, topic, partition, offset and raw value.

    Reading the topic a second time, in a query of its own, would double the job's cost
    for records that are usually absent. Instead, after each batch the counting query's
    own totals tell whether that batch rejected anything; only then is exactly that
    batch's offset range (from Spark's offset log in the checkpoint) read again, and the
    rejected records are written to ``batch=<id>/``. Replaying a batch after a crash reads
    the same range and overwrites the same folder: nothing lost, nothing duplicated.
    """

    def __init__(self, options: JobOptions, spark: SparkSession) -> None:
        self.options = options
        self.spark = spark
        self.offsets_dir = Path(options.checkpoint_dir) / QUERY_CHECKPOINT / "offsets"
        self.initial_offsets = (
            Path(options.checkpoint_dir) / QUERY_CHECKPOINT / "sources" / "0" / "0"
        )
        self.progress_dir = Path(options.checkpoint_dir) / "quarantine-progress"

    def after_batch(self, batch_id: int, rejected_total: int) -> int | None:
        """Quarantine this batch's rejected records, if it had any; returns the rejected
        total after the previous batch (None if unknown)."""
        previous = self._recorded_total(batch_id - 1) if batch_id > 0 else 0
        if previous is None or rejected_total > previous:
            self.extract(batch_id)
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        marker = self.progress_dir / str(batch_id)
        marker.with_suffix(".tmp").write_text(f"{rejected_total}\n")
        marker.with_suffix(".tmp").replace(marker)
        return previous

    def _recorded_total(self, batch_id: int) -> int | None:
        try:
            return int((self.progress_dir / str(batch_id)).read_text())
        except (OSError, ValueError):
            return None  # unknown (e.g. a checkpoint from before this file): extract

    @staticmethod
    def _offsets(path: Path) -> dict[str, dict[str, int]]:
        """The Kafka offsets JSON of an offset-log or initial-offsets file (its last line)."""
        lines = path.read_bytes().decode("utf-8", "replace").strip().splitlines()
        return json.loads(lines[-1])

    def extract(self, batch_id: int) -> None:
        """Write batch ``batch_id``'s rejected records (its offset range read again)."""
        end = self._offsets(self.offsets_dir / str(batch_id))
        if batch_id == 0:
            start = self._offsets(self.initial_offsets)
        else:
            start = self._offsets(self.offsets_dir / str(batch_id - 1))
        # Partitions that appeared during this batch start at their beginning (-2).
        start = {t: {p: start.get(t, {}).get(p, -2) for p in parts} for t, parts in end.items()}
        reader = (
            self.spark.read.format("kafka")
            .option("subscribe", self.options.topic)
            .option("startingOffsets", json.dumps(start))
            .option("endingOffsets", json.dumps(end))
            .options(**self.options.kafka_source_options())
        )
        records = reader.load().withColumnRenamed("timestamp", "kafka_timestamp")
        rejected = classify_records(
            records, self.options.max_future_seconds, for_filtering=True
        ).where(F.col("rejected_reason").isNotNull())
        rejected.select(
            F.col("rejected_reason").alias("reason"),
            "topic",
            "partition",
            "offset",
            F.date_format("kafka_timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX").alias(
                "kafka_timestamp"
            ),
            F.col("key").cast("string").alias("key"),
            F.length("value").alias("value_bytes"),
            F.base64("value").alias("value_base64"),
        ).coalesce(1).write.mode("overwrite").json(
            f"{self.options.quarantine_dir}/batch={batch_id:010d}"
        )


def print_previous_result(options: JobOptions) -> None:
    """For an available-now run with nothing new: show the table the last run left."""
    print(
        f"No new records on {options.topic!r} since the last run "
        f"(checkpoint {options.checkpoint_dir})."
    )
    if not options.output_dir:
        return
    table = Path(options.output_dir) / options.period.csv_name
    if table.exists():
        period, counts = read_counts(table)  # the contract's one reader of the tables
        print(f"Latest table ({table}):")
        print(render_table(header(period), [(b, *n) for b, n in counts.items()]))
