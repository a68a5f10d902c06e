"""The job taken apart, for ``--steps profile``: one query per component, in one JVM.

Each variant drains the same topic with one more part of the job than the one before
(read Kafka; parse; classify; count per period; drop repeated ids with each state store;
the whole job with its sinks), so the difference of two variants' task CPU is what that
part costs. Task CPU comes from Spark's event log, where every job of a streaming query
carries the query's run id as its job group; this file only runs the variants and says
which run id is which (and what the sinks cost on the driver, outside any task).

All variants run in one JVM after a warm-up run, so none of them pays for the JIT
compiling the code they share; the order of the variants alternates between rounds.

    spark-submit --jars ... bench/component_job.py BOOTSTRAP TOPIC WORK_DIR ROUNDS VARIANT...
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own convention

from consumer import sinks
from consumer.job import build_spark, counting_query, read_kafka
from consumer.options import JobOptions, parse_options
from consumer.state_store import MEMORY, ROCKSDB, store_settings
from consumer.transform import (
    aggregate_outcomes,
    classify_records,
    drop_repeated_events,
    parse_events,
)

# name -> (the query's input to count, given the Kafka records and the options; store;
# changelog checkpointing). The last column only matters for RocksDB.
Variant = tuple[Callable[[DataFrame, JobOptions], DataFrame], str, bool]


def _minimal(records: DataFrame, _options: JobOptions) -> DataFrame:
    """bench/minimal_job.py's query, for the per-record reference."""
    from bench.minimal_job import SCHEMA

    events = records.select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("e"))
    return events.groupBy(
        F.date_format(F.to_timestamp("e.timestamp"), "yyyy-MM").alias("month")
    ).count()


def _deduplicated(records: DataFrame, options: JobOptions) -> DataFrame:
    classified = classify_records(records, options.max_future_seconds)
    return aggregate_outcomes(drop_repeated_events(classified, options.dedupe_window))


VARIANTS: dict[str, Variant] = {
    "minimal": (_minimal, MEMORY, False),
    "read": (lambda r, _o: r.groupBy().agg(F.count("value").alias("n")), MEMORY, False),
    "parse": (lambda r, _o: parse_events(r).groupBy().agg(F.count("_event")), MEMORY, False),
    "classify": (
        lambda r, o: (
            classify_records(r, o.max_future_seconds).groupBy().agg(F.count("rejected_reason"))
        ),
        MEMORY,
        False,
    ),
    "aggregate": (
        lambda r, o: aggregate_outcomes(classify_records(r, o.max_future_seconds)),
        MEMORY,
        False,
    ),
    "dedupe-memory": (_deduplicated, MEMORY, False),
    "dedupe-rocksdb": (_deduplicated, ROCKSDB, False),
    "dedupe-rocksdb-changelog": (_deduplicated, ROCKSDB, True),
}
JOB = "job"  # the job's own query (observed metrics, sinks), on the store a drain gets


class SinkClock:
    """Wall and driver-thread CPU seconds of each sink call, summed over the run."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                spent = self.seconds.setdefault(name, [0.0, 0.0, 0])
                spent[0] += time.perf_counter() - wall
                spent[1] += time.thread_time() - cpu
                spent[2] += 1

        return timed


def job_options(bootstrap: str, topic: str, folder: Path) -> JobOptions:
    return parse_options(
        ["--bootstrap-servers", bootstrap, "--topic", topic, "--trigger", "available-now",
         "--checkpoint-dir", str(folder / "checkpoint"), "--output-dir", str(folder / "out")],
        {},
    )  # fmt: skip


def set_store(spark: SparkSession, store: str, changelog: bool) -> None:
    for key, value in store_settings(store, changelog=changelog).items():
        spark.conf.set(key, value)


def run_variant(spark: SparkSession, name: str, options: JobOptions) -> dict[str, Any]:
    """Drain the topic with one variant; what the bench needs to find and judge its tasks."""
    records = read_kafka(spark, options)
    clock = SinkClock()
    output = None
    if name == JOB:
        set_store(spark, MEMORY, changelog=False)
        writer, output = counting_query(spark, options, records)
        if output.database is not None:
            output.database.write = clock.wrap("database", output.database.write)
        if output.quarantine is not None:
            output.quarantine.after_batch = clock.wrap("quarantine", output.quarantine.after_batch)
        sinks.write_csv_atomically = clock.wrap("csv", CSV_WRITER)
    else:
        build, store, changelog = VARIANTS[name]
        set_store(spark, store, changelog)
        writer = (
            build(records, options)
            .writeStream.outputMode("complete")
            .option("checkpointLocation", f"{options.checkpoint_dir}/query")
            .foreachBatch(lambda frame, _batch: frame.collect())
            .trigger(availableNow=True)
        )
    query = writer.start()
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"{name}: {query.exception()}")
    progress = query.recentProgress
    result: dict[str, Any] = {
        "variant": name,
        "run_id": str(query.runId),
        "records": sum(p.numInputRows for p in progress),
        "batches": len(progress),
        "state": [
            {"rows": op.numRowsTotal, "memory_bytes": op.memoryUsedBytes}
            for op in (progress[-1].stateOperators if progress else [])
        ],
        "sinks": clock.seconds,
    }
    if output is not None and output.quarantine is not None:
        # What a batch with a rejected record costs: its offset range read and classified
        # again. The drain's topic has none, so the re-read is asked for here.
        spark.sparkContext.setJobGroup(f"{query.runId}-reread", "quarantine re-read")
        started = time.perf_counter()
        output.quarantine.extract(len(progress) - 1)
        result["reread_run_id"] = f"{query.runId}-reread"
        result["reread_s"] = time.perf_counter() - started
        spark.sparkContext.setJobGroup("", "")
    return result


CSV_WRITER = sinks.write_csv_atomically


def main(bootstrap: str, topic: str, work_dir: str, rounds: str, *variants: str) -> None:
    work = Path(work_dir)
    spark = build_spark(job_options(bootstrap, topic, work / "setup"))
    results = []
    try:
        # The warm-up: the JIT compiles what all variants share (Kafka, JSON, the checks).
        run_variant(spark, "aggregate", job_options(bootstrap, topic, work / "warm-up"))
        for round_ in range(int(rounds)):
            order = variants if round_ % 2 == 0 else tuple(reversed(variants))
            for name in order:
                folder = work / f"{name}-{round_}"
                result = run_variant(spark, name, job_options(bootstrap, topic, folder))
                results.append({**result, "round": round_})
                print(json.dumps(results[-1]), flush=True)
    finally:
        spark.stop()
    (work / "components.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
