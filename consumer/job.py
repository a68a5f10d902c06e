"""The streaming job, top-down: read Kafka, transform, write every batch; run and stop."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery, StreamingQueryListener

from consumer.alert_sink import AlertOutput
from consumer.alerts import alert_windows, failed_login_candidates, failed_logins
from consumer.checkpoint_log import batch_ids, check_clock_at_start
from consumer.errors import EXIT_CHECKPOINT, JobError
from consumer.guards import (
    TopicFacts,
    check_checkpoint,
    check_kafka,
    check_topic_id,
    ensure_topic,
    explain_failure,
    last_committed_batch,
    lock_checkpoint,
    record_checkpoint_identity,
    retention_note,
)
from consumer.options import (
    ALERTS_CHECKPOINT,
    ALERTS_QUERY,
    APP_NAME,
    QUERY_CHECKPOINT,
    JobOptions,
    parse_options,
)
from consumer.sinks import (
    Quarantine,
    TableOutput,
    print_previous_result,
)
from consumer.state_store import (
    AUTO,
    MEMORY,
    PROVIDER_CONF,
    PROVIDERS,
    backlog_records,
    checkpoint_store,
    choose_store,
    describe,
    store_settings,
)
from consumer.transform import (
    aggregate_outcomes,
    classify_records,
    drop_repeated_events,
)


class BatchReporter(StreamingQueryListener):
    """One line per batch: records read, rejected, repeats dropped, duration, rates.

    The counts come from what Spark and the sink know anyway: records read from the
    query's progress, repeats from the deduplication's own metric, rejections from the
    sink (the growth of the rejected total). Observed metrics (``DataFrame.observe``)
    would count them too, but cost the counting query a sixth of its CPU per record
    (docs/PERFORMANCE.md). Spark delivers listener events asynchronously;
    ``last_batch_id`` lets the run wait for the final line before it prints its summary.
    """

    def __init__(self, output: TableOutput | None = None) -> None:
        self.last_batch_id = -1
        self.output = output

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        pass

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        progress = event.progress
        if progress.name == ALERTS_QUERY:
            report_late_rows(progress)
            return
        if progress.name != APP_NAME:
            return
        found = self.output.rejected_in_batch.get(progress.batchId) if self.output else None
        rejected = f"{found:,}" if found is not None else "unknown"
        repeated = sum(
            op.customMetrics.get("numDroppedDuplicateRows", 0)
            for op in progress.stateOperators
            if op.operatorName.startswith("dedupe")
        )
        duration_ms = progress.durationMs.get("triggerExecution", 0)
        # Spark knows the arrival rate only from the second batch on.
        arrival = (
            f"input {progress.inputRowsPerSecond:,.0f} records/s, "
            if progress.inputRowsPerSecond
            else ""
        )
        self.last_batch_id = progress.batchId
        print(
            f"[{APP_NAME}] batch {progress.batchId}: {progress.numInputRows:,} records read, "
            f"{rejected} rejected, {repeated:,} repeated event ids dropped, "
            f"{duration_ms / 1000:.2f} s ({arrival}processed "
            f"{progress.processedRowsPerSecond:,.0f} records/s)",
            flush=True,
        )

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        pass


def report_late_rows(progress: Any) -> None:
    """A line when the detector's watermark dropped failed logins as late: they arrived
    too late (by event time) for any window still open, so no alert can include them.

    Spark counts what it dropped after a first aggregation within each input partition:
    one row per (address, window) that late failed logins of a partition would have
    updated, not one per login.
    """
    late = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
    if late:
        print(
            f"[{ALERTS_QUERY}] batch {progress.batchId}: late failed logins left out: "
            f"{late:,} (address, window) rows older than the alert watermark",
            flush=True,
        )


def build_spark(options: JobOptions) -> SparkSession:
    spark = (
        SparkSession.builder.appName(APP_NAME)
        .config("spark.sql.session.timeZone", options.timezone)
        .config("spark.sql.shuffle.partitions", str(options.shuffle_partitions))
        .config("spark.ui.showConsoleProgress", "false")
        # Adaptive execution does not apply to streaming queries; Spark warns if it is on.
        .config("spark.sql.adaptive.enabled", "false")
        # With a watermark (the dedupe window) Spark would run extra empty batches just to
        # advance it, printing the same table again; eviction can wait for real data.
        .config("spark.sql.streaming.noDataMicroBatches.enabled", "false")
        # Each query's jobs in a pool of their own (scheduler_pool): see there.
        .config("spark.scheduler.mode", "FAIR")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark


def heap_bytes(spark: SparkSession) -> int:
    """The heap that holds the state: the driver's in local mode, else an executor's."""
    context = spark.sparkContext
    if context.master.startswith("local"):
        return int(context._jvm.java.lang.Runtime.getRuntime().maxMemory())
    return int(context._jsc.sc().executorMemory()) * 2**20


def configure_state_store(spark: SparkSession, options: JobOptions) -> str:
    """Set the state store for this run (see :mod:`consumer.state_store`); returns it.

    A checkpoint keeps the store it started with; a new one takes ``--state-store``, or a
    ``--conf`` of the store given to spark-submit.
    """
    given = spark.sparkContext.getConf()
    drain = options.trigger == "available-now"
    existing = checkpoint_store(Path(options.checkpoint_dir) / QUERY_CHECKPOINT)
    if existing is not None:
        if options.state_store not in (AUTO, existing):
            raise JobError(
                f"the checkpoint {options.checkpoint_dir} keeps its state {describe(existing)}; "
                f"--state-store {options.state_store} needs a new --checkpoint-dir.",
                EXIT_CHECKPOINT,
            )
        store = existing
    elif given.contains(PROVIDER_CONF) and options.state_store == AUTO:
        store = {c: n for n, c in PROVIDERS.items()}.get(given.get(PROVIDER_CONF), "")
    elif options.dedupe_window is None and options.state_store == AUTO:
        store = MEMORY  # no ids to keep: the state is the few rows of the counts
    else:
        backlog = None
        if drain and options.state_store == AUTO:
            backlog = backlog_records(
                spark, options.kafka_properties(), options.topic, options.starting_offsets
            )
        store = choose_store(options.state_store, drain, backlog, heap_bytes(spark))
    for key, value in store_settings(store).items() if store else ():
        if not given.contains(key):  # a --conf from spark-submit wins
            spark.conf.set(key, value)
    return store or given.get(PROVIDER_CONF)


def read_kafka(spark: SparkSession, options: JobOptions) -> DataFrame:
    """The topic as a stream of raw records; Kafka's ``timestamp`` becomes ``kafka_timestamp``."""
    reader = (
        spark.readStream.format("kafka")
        .option("subscribe", options.topic)
        .option("startingOffsets", options.starting_offsets)
        # Fail rather than silently skip records that retention deleted before we read them.
        .option("failOnDataLoss", "true")
        # A fetch at the end of a partition otherwise waits the default 500 ms for more data;
        # with three partitions that tripled the time to read a 50k-event backlog.
        .option("kafka.fetch.max.wait.ms", "20")
    )
    # The client properties, and how long a running job waits for a broker that went away.
    reader = reader.options(**options.kafka_source_options())
    if options.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    return reader.load().withColumnRenamed("timestamp", "kafka_timestamp")


def counting_query(
    spark: SparkSession, options: JobOptions, records: DataFrame
) -> tuple[DataStreamWriter, TableOutput]:
    """The one streaming query on ``records`` (:func:`read_kafka`), ready to start: classify,
    drop repeats, count, write.

    Its sink prints and writes the whole table after every batch, and has the batch's
    rejected records quarantined.
    """
    classified = classify_records(records, options.max_future_seconds)
    unique = drop_repeated_events(classified, options.dedupe_window)
    output = TableOutput(options, Quarantine(options, spark))
    writer = (
        aggregate_outcomes(unique, options.period.key)
        .writeStream.queryName(APP_NAME)
        .outputMode("complete")
        .option("checkpointLocation", f"{options.checkpoint_dir}/{QUERY_CHECKPOINT}")
        .foreachBatch(output)
    )
    return with_trigger(writer, options), output


def with_trigger(writer: DataStreamWriter, options: JobOptions) -> DataStreamWriter:
    """``--trigger``: drain what is there and stop, or a batch every interval."""
    if options.trigger == "available-now":
        return writer.trigger(availableNow=True)
    return writer.trigger(processingTime=options.trigger)


def alerts_query(
    spark: SparkSession, options: JobOptions, records: DataFrame
) -> tuple[DataStreamWriter, AlertOutput]:
    """The detector, a second query on the same records: keep those that can be failed
    logins, classify them, keep the failed logins, window them per address, write the
    windows that cross the rule (consumer/alert_sink.py).

    Update mode, so a window alerts in the batch where it crosses the rule, not after the
    watermark has passed its end (a minute and a half later). Its own checkpoint folder, so
    the counting query's state and progress are the same with or without it.
    """
    assert options.alerts_topic is not None
    candidates = failed_login_candidates(records)
    classified = classify_records(candidates, options.max_future_seconds, for_filtering=True)
    windows = alert_windows(failed_logins(classified), options.alert_rule)
    output = AlertOutput(options, spark, options.alerts_topic)
    writer = (
        windows.writeStream.queryName(ALERTS_QUERY)
        .outputMode("update")
        .option("checkpointLocation", f"{options.checkpoint_dir}/{ALERTS_CHECKPOINT}")
        .foreachBatch(output)
    )
    return with_trigger(writer, options), output


# The detector's state is what the watermark keeps (a minute and a half of failed logins):
# small, so it lives in the heap, in few partitions, which keeps a live batch short. Spark
# reads these when a query starts and keeps them in its checkpoint.
ALERTS_QUERY_CONF = {
    PROVIDER_CONF: PROVIDERS[MEMORY],
    "spark.sql.shuffle.partitions": "1",
}


@contextlib.contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """``settings`` for the queries started inside, the session's own ones after."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


@contextlib.contextmanager
def scheduler_pool(spark: SparkSession, name: str) -> Iterator[None]:
    """The jobs of a query started inside run in the scheduler pool ``name``.

    Spark's default FIFO scheduler gives every task of whichever batch asked first before
    the other query's: a detector's batch of a few hundred failed logins waited behind the
    counting batch's tasks. With a pool per query (and ``spark.scheduler.mode`` FAIR) the
    cores are shared between the two batches as tasks finish (docs/ARCHITECTURE.md).
    """
    context = spark.sparkContext
    context.setLocalProperty("spark.scheduler.pool", name)
    try:
        yield
    finally:
        context.setLocalProperty("spark.scheduler.pool", None)  # type: ignore[arg-type]  # unsets


def wait_for_report(reporter: BatchReporter, query: StreamingQuery, timeout_s: float = 5) -> None:
    """Let the listener print the last batch's line before the run's summary line."""
    last = (query.lastProgress or {}).get("batchId", -1)
    deadline = time.monotonic() + timeout_s
    while reporter.last_batch_id < last and time.monotonic() < deadline:
        time.sleep(0.05)  # poll interval, bounded by the deadline


class StopRequest:
    """SIGINT (Ctrl-C) or SIGTERM asks the job to stop between polls, not to die mid-call.

    Python's default KeyboardInterrupt would surface inside a Py4J call and leave the
    query running in the JVM (or, with the JVM stopping too, print Py4J tracebacks). The
    handler only records the request; :func:`run` stops the query cleanly and says after
    which batch it stopped. A second signal ends the driver at once (exit 130).
    """

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.signal_name = ""

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        # submit.sh tells this driver's pid to whoever must forward a SIGTERM to it.
        pid_file = os.environ.get("CONSUMER_DRIVER_PID_FILE")
        if pid_file:
            with contextlib.suppress(OSError):
                Path(pid_file).write_text(f"{os.getpid()}\n")

    def _handle(self, signum: int, _frame: object) -> None:
        if self.requested.is_set():
            print("Stopping now, without waiting for the query.", file=sys.stderr, flush=True)
            os._exit(130)
        self.signal_name = signal.Signals(signum).name
        self.requested.set()
        print(
            f"{self.signal_name}: stopping the query (again to stop at once)...",
            file=sys.stderr,
            flush=True,
        )


def await_queries(
    queries: Sequence[StreamingQuery], stop: StopRequest, poll_s: float = 0.5
) -> bool:
    """Wait until every query ended, or one failed; True if they were stopped because a
    stop was requested. The caller reads a failure from ``exception()`` (or from what
    ``awaitTermination`` raised) and stops the others."""
    while True:
        active = [q for q in queries if q.isActive]
        if not active or any(q.exception() is not None for q in queries if not q.isActive):
            return False
        if stop.requested.is_set():
            for query in active:
                query.stop()
            return True
        active[0].awaitTermination(poll_s)


def print_stopped(options: JobOptions) -> None:
    last = last_committed_batch(options)
    where = f"after batch {last}" if last is not None else "before its first batch"
    print(
        f"Stopped {where}. Progress is in the checkpoint {options.checkpoint_dir}: "
        "rerun the same command to resume.",
        flush=True,
    )


def run(spark: SparkSession, options: JobOptions, stop: StopRequest) -> None:
    # The Kafka check waits on the network and building the query only on the driver, so
    # they run side by side; Kafka's answer still comes first, and nothing starts without it.
    # The state store is chosen after Kafka answered (a drain's store depends on its
    # backlog), on the same thread, and before the query starts (Spark reads it then).
    def check_and_choose_store() -> tuple[TopicFacts, str]:
        topic = check_kafka(spark, options)
        if options.alerts_topic:
            ensure_topic(spark, options, options.alerts_topic)
        return topic, configure_state_store(spark, options)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="check-kafka") as pool:
        kafka_checked = pool.submit(check_and_choose_store)
        try:
            records = read_kafka(spark, options)
            writer, output = counting_query(spark, options, records)
            detector = alerts_query(spark, options, records) if options.alerts_topic else None
        finally:
            topic, store = kafka_checked.result()  # raises the check's JobError first
    check_topic_id(options, topic.topic_id)
    new_checkpoint = not batch_ids(Path(options.checkpoint_dir) / QUERY_CHECKPOINT / "offsets")
    note = retention_note(options.topic, topic.earliest, new_checkpoint)
    if note:
        print(note, flush=True)
    if stop.requested.is_set():
        print("Stopped before the query started.", flush=True)
        return
    record_checkpoint_identity(options, topic.topic_id, state_store=store)
    if store == MEMORY and options.trigger != "available-now" and options.dedupe_window:
        print(
            f"State: {describe(store)}, as this checkpoint started (with a drain). A live run "
            f"keeps every event id of the last {options.dedupe_window} there; for a long one "
            "at a high rate, start a new --checkpoint-dir (it will use RocksDB).",
            flush=True,
        )
    reporter = BatchReporter(output)
    spark.streams.addListener(reporter)
    started = time.monotonic()
    with scheduler_pool(spark, APP_NAME):
        query = writer.start()
    queries = [query]
    if detector is not None:
        with session_conf(spark, ALERTS_QUERY_CONF), scheduler_pool(spark, ALERTS_QUERY):
            queries.append(detector[0].start())
    if options.trigger == "available-now":
        print(f"Counting the records on {options.topic!r} up to now, then stopping.", flush=True)
    else:
        print(
            f"Counting new records on {options.topic!r} every {options.trigger}; "
            "Ctrl-C stops between batches (a rerun resumes).",
            flush=True,
        )
    outputs = [output, *([detector[1]] if detector else [])]
    try:
        stopped = await_queries(queries, stop)
        drained_s = time.monotonic() - started
    except PySparkException as exc:
        known = next((o.failure for o in outputs if o.failure is not None), None)
        raise known or explain_failure(failure_text(exc), options) from None
    finally:
        for running in queries:
            if running.isActive:
                running.stop()
        if detector is not None:
            detector[1].close()
    if stopped:
        wait_for_report(reporter, query)
        print_stopped(options)
        return
    for ended, sink in zip(queries, outputs, strict=True):
        if ended.exception() is not None:
            raise sink.failure or explain_failure(failure_text(ended.exception()), options)
    if options.trigger == "available-now":
        if output.batches_written == 0:
            print_previous_result(options)
        else:
            wait_for_report(reporter, query)
        finished = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"Drained {options.topic!r} in {drained_s:.1f} s (finished {finished}).", flush=True)


def failure_text(exc: Any) -> Exception:
    """A failed query's message with the JVM's stack trace (causes included), which PySpark
    keeps apart from the message."""
    trace = getattr(exc, "_stackTrace", None) or ""
    return Exception(f"{exc}\n{trace}" if trace else str(exc))


def import_in_background(module: str) -> None:
    """Start importing ``module`` now, so the import overlaps with the Spark session's start.

    SQLAlchemy takes a noticeable part of a second to import, and the database sink needs
    it before the first batch; Python's import lock makes the later ``import`` wait for
    this one instead of importing twice. A failed import is left for that later ``import``
    to report, with the sink's own message.
    """

    def run() -> None:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)

    threading.Thread(target=run, name=f"import {module}", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv, os.environ)
    if options.db_url:
        import_in_background("sqlalchemy")
    stop = StopRequest()
    stop.install()
    try:
        check_checkpoint(options)  # before Spark starts: a wrong checkpoint fails in a second
        lock = lock_checkpoint(options)  # held until this process ends, however it ends
        replanned = check_clock_at_start(
            Path(options.checkpoint_dir) / QUERY_CHECKPOINT,
            options.checkpoint_dir,
            options.dedupe_window,
            time.time_ns() // 1_000_000,
        )
        if replanned:
            print(replanned, flush=True)
        spark = build_spark(options)
        stop.install()  # again: the SparkContext replaced the SIGINT handler with its own
        try:
            run(spark, options, stop)
        finally:
            spark.stop()
            lock.close()
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0
