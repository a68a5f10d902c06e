"""Count logins per calendar month of event time, from Kafka, with Spark Structured Streaming.

Run it with ``consumer/submit.sh`` (which adds the Kafka connector matching your Spark):

    consumer/submit.sh --trigger available-now --output-dir output/logins

It reads the login events (JSON, see ``producer/login_event.schema.json``) from a topic,
rejects records that are not valid events, and keeps a running table of logins per month
(``YYYY-MM`` in ``--timezone``, UTC by default) in complete output mode: after every batch
it prints the whole table and, with ``--output-dir``, rewrites it as CSV. Rejected records
are never counted and never dropped silently: they are written, with their reason,
partition and offset, to a quarantine folder, and their counts per reason are printed.

This file depends only on pyspark so ``spark-submit`` can ship it to any cluster.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention
from pyspark.sql import types as T  # noqa: N812
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

APP_NAME = "monthly_logins"
DEFAULT_BOOTSTRAP_SERVERS = "localhost:9092"
DEFAULT_TOPIC = "logins"
DEFAULT_CHECKPOINT_DIR = ".local/checkpoints/monthly_logins"
MONTHLY_CSV = "monthly_logins.csv"
REJECTED_CSV = "rejected_reasons.csv"
SUPPORTED_SCHEMA_VERSION = 1
# A valid event is about 450 bytes; anything far larger is not a login event.
MAX_EVENT_BYTES = 16 * 1024

EXIT_FAILED, EXIT_USAGE, EXIT_KAFKA, EXIT_CHECKPOINT = 1, 2, 3, 4

# The fields the job relies on, typed. Other fields of the event are ignored here.
EVENT_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("timestamp", T.StringType()),
        T.StructField("success", T.BooleanType()),
        T.StructField("schema_version", T.IntegerType()),
        # Filled by from_json when a field has the wrong JSON type, or the text is not JSON.
        T.StructField("_corrupt_record", T.StringType()),
    ]
)
# ISO-8601 with an explicit zone (Z or +hh:mm): a time without a zone is ambiguous.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"

REJECTION_REASONS = (
    "empty_value",
    "invalid_utf8",
    "oversized",
    "not_json_object",
    "wrong_type",
    "missing_event_id",
    "missing_user_id",
    "missing_timestamp",
    "missing_success",
    "invalid_timestamp",
    "future_timestamp",
    "unsupported_schema_version",
)


class JobError(RuntimeError):
    """A problem the user can fix; ``exit_code`` tells scripts which kind."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaSecurity:
    """Client security settings; the password never appears in ``repr``."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None

    def client_properties(self) -> dict[str, str]:
        """Kafka client properties (without Spark's ``kafka.`` prefix)."""
        props = {"security.protocol": self.protocol}
        if self.protocol.startswith("SASL"):
            module = (
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if self.mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule"
            )
            props["sasl.mechanism"] = self.mechanism or "SCRAM-SHA-512"
            props["sasl.jaas.config"] = (
                f'{module} required username="{_jaas_escape(self.username or "")}" '
                f'password="{_jaas_escape(self.password or "")}";'
            )
        if self.ssl_cafile:
            props["ssl.truststore.type"] = "PEM"
            props["ssl.truststore.location"] = self.ssl_cafile
        return props


def _jaas_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class JobOptions:
    bootstrap_servers: str
    topic: str
    starting_offsets: str
    trigger: str  # "available-now" or a Spark interval such as "10 seconds"
    checkpoint_dir: str
    output_dir: str | None
    quarantine_dir: str
    timezone: str
    max_offsets_per_trigger: int | None
    shuffle_partitions: int
    max_future_seconds: int
    security: KafkaSecurity
    connect_timeout_s: int
    dedupe_window: str | None = "24 hours"

    def kafka_properties(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.security.client_properties()}


_INTERVAL = re.compile(r"^\s*(\d+)\s*(ms|s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)\s*$")
_INTERVAL_WORDS = {
    "ms": "milliseconds",
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
}


def parse_trigger(text: str) -> str:
    """``available-now`` or an interval such as ``10s`` / ``1 minute`` (Spark's spelling)."""
    if text.strip().lower() in ("available-now", "availablenow", "available_now"):
        return "available-now"
    match = _INTERVAL.match(text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a trigger: use available-now or an interval such as 10s or 1m"
        )
    return f"{int(match.group(1))} {_INTERVAL_WORDS[match.group(2)]}"


def parse_dedupe_window(text: str) -> str | None:
    """An interval such as ``24h`` (Spark's spelling), or None for ``0``/``off``."""
    if text.strip().lower() in ("0", "off", "none"):
        return None
    interval = parse_trigger(text)
    if interval == "available-now":
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval such as 24h")
    return interval


def parse_timezone(text: str) -> str:
    """An IANA zone name, checked against Python's time-zone database where there is one.

    Spark resolves the zone with Java's own database; Python's is only an early check. Some
    images (minimal Debian, Bitnami's among them) ship no tzdata, where even ``UTC`` is
    unknown to :mod:`zoneinfo`: there the name goes to Spark unchecked.
    """
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        if not text.strip() or "\0" in text or available_timezones():
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an IANA time zone such as UTC or Europe/Berlin"
            ) from None
    return text


def _one_of(*values: str) -> Any:
    """An argparse type that also checks environment defaults (``choices`` does not)."""

    def convert(text: str) -> str:
        if text not in values:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(values)}")
        return text

    return convert


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """Flags with environment-variable defaults (the variable is in brackets in ``--help``).

    String defaults go through each flag's ``type`` like command-line values, so a bad
    environment value is reported as a usage error too.
    """

    def env_default(name: str, default: Any) -> Any:
        return env.get(name) or default

    parser = argparse.ArgumentParser(
        prog="consumer/submit.sh",
        description="Count logins per calendar month of event time from a Kafka topic.",
        epilog="KAFKA_SASL_PASSWORD (or --sasl-password-file) holds the SASL password.",
    )
    add = parser.add_argument
    add(
        "--bootstrap-servers",
        metavar="HOST:PORT",
        default=env_default("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP_SERVERS),
        help="Kafka bootstrap servers (default: %(default)s) [KAFKA_BOOTSTRAP_SERVERS]",
    )
    add(
        "--topic",
        metavar="NAME",
        default=env_default("LOGINS_TOPIC", DEFAULT_TOPIC),
        help="topic to read (default: %(default)s) [LOGINS_TOPIC]",
    )
    add(
        "--starting-offsets",
        type=_one_of("earliest", "latest"),
        metavar="{earliest,latest}",
        default=env_default("CONSUMER_STARTING_OFFSETS", "earliest"),
        help="where a new checkpoint starts reading (default: %(default)s) "
        "[CONSUMER_STARTING_OFFSETS]",
    )
    add(
        "--trigger",
        metavar="TRIGGER",
        type=parse_trigger,
        default=env_default("CONSUMER_TRIGGER", "10s"),
        help="available-now (drain the topic, then stop) or an interval such as 10s "
        "(default: 10s) [CONSUMER_TRIGGER]",
    )
    add(
        "--checkpoint-dir",
        metavar="DIR",
        default=env_default("CONSUMER_CHECKPOINT_DIR", DEFAULT_CHECKPOINT_DIR),
        help="where the job keeps its progress and state; reuse it to resume "
        "(default: %(default)s) [CONSUMER_CHECKPOINT_DIR]",
    )
    add(
        "--output-dir",
        metavar="DIR",
        default=env_default("CONSUMER_OUTPUT_DIR", None),
        help=f"also write the table as DIR/{MONTHLY_CSV} and rejected counts as "
        f"DIR/{REJECTED_CSV} after every batch [CONSUMER_OUTPUT_DIR]",
    )
    add(
        "--quarantine-dir",
        metavar="DIR",
        default=env_default("CONSUMER_QUARANTINE_DIR", None),
        help="where rejected records are written (default: OUTPUT_DIR/rejected, or "
        "CHECKPOINT_DIR/quarantine) [CONSUMER_QUARANTINE_DIR]",
    )
    add(
        "--timezone",
        metavar="ZONE",
        type=parse_timezone,
        default=env_default("CONSUMER_TIMEZONE", "UTC"),
        help="time zone of the calendar months (default: %(default)s) [CONSUMER_TIMEZONE]",
    )
    add(
        "--max-offsets-per-trigger",
        metavar="N",
        type=_positive_int,
        default=env_default("CONSUMER_MAX_OFFSETS_PER_TRIGGER", None),
        help="cap on records per batch (default: no cap) [CONSUMER_MAX_OFFSETS_PER_TRIGGER]",
    )
    add(
        "--shuffle-partitions",
        metavar="N",
        type=_positive_int,
        default=env_default("CONSUMER_SHUFFLE_PARTITIONS", "4"),
        help="state partitions; fixed by the checkpoint once started (default: %(default)s) "
        "[CONSUMER_SHUFFLE_PARTITIONS]",
    )
    add(
        "--max-future",
        metavar="SECONDS",
        type=_positive_int,
        default=env_default("CONSUMER_MAX_FUTURE_SECONDS", "86400"),
        help="reject events whose time is further than this ahead of their Kafka timestamp "
        "(default: %(default)s) [CONSUMER_MAX_FUTURE_SECONDS]",
    )
    add(
        "--dedupe-window",
        metavar="INTERVAL",
        type=parse_dedupe_window,
        default=env_default("CONSUMER_DEDUPE_WINDOW", "24h"),
        help="count an event_id once if it repeats within this much processing time; "
        "0 counts every record (default: 24h) [CONSUMER_DEDUPE_WINDOW]",
    )
    add(
        "--connect-timeout",
        metavar="SECONDS",
        type=_positive_int,
        default=env_default("CONSUMER_CONNECT_TIMEOUT", "30"),
        help="how long to wait for Kafka before failing (default: %(default)s) "
        "[CONSUMER_CONNECT_TIMEOUT]",
    )
    add(
        "--security-protocol",
        type=_one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
        metavar="PROTOCOL",
        default=env_default("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT"),
        help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: %(default)s) "
        "[KAFKA_SECURITY_PROTOCOL]",
    )
    add(
        "--sasl-mechanism",
        type=_one_of("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
        metavar="MECHANISM",
        default=env_default("KAFKA_SASL_MECHANISM", None),
        help="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 [KAFKA_SASL_MECHANISM]",
    )
    add(
        "--sasl-username",
        metavar="USER",
        default=env_default("KAFKA_SASL_USERNAME", None),
        help="[KAFKA_SASL_USERNAME]",
    )
    add(
        "--sasl-password-file",
        metavar="FILE",
        default=env_default("KAFKA_SASL_PASSWORD_FILE", None),
        help="file holding the SASL password [KAFKA_SASL_PASSWORD_FILE]",
    )
    add(
        "--ssl-cafile",
        metavar="FILE",
        default=env_default("KAFKA_SSL_CAFILE", None),
        help="CA certificate (PEM) for TLS [KAFKA_SSL_CAFILE]",
    )
    return parser


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str]) -> JobOptions:
    """The job's options from flags and environment; usage errors exit with status 2."""
    parser = build_parser(env)
    args = parser.parse_args(argv)

    password = env.get("KAFKA_SASL_PASSWORD")
    if args.sasl_password_file:
        try:
            password = Path(args.sasl_password_file).read_text().strip()
        except OSError as exc:
            parser.error(f"cannot read --sasl-password-file: {exc}")
    if args.security_protocol.startswith("SASL") and not (
        args.sasl_mechanism and args.sasl_username and password
    ):
        parser.error(
            f"{args.security_protocol} needs --sasl-mechanism, --sasl-username and a password "
            "(KAFKA_SASL_PASSWORD or --sasl-password-file)"
        )
    quarantine = args.quarantine_dir or (
        os.path.join(args.output_dir, "rejected")
        if args.output_dir
        else os.path.join(args.checkpoint_dir, "quarantine")
    )
    return JobOptions(
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        starting_offsets=args.starting_offsets,
        trigger=args.trigger,
        checkpoint_dir=args.checkpoint_dir,
        output_dir=args.output_dir,
        quarantine_dir=quarantine,
        timezone=args.timezone,
        max_offsets_per_trigger=(
            None if args.max_offsets_per_trigger is None else int(args.max_offsets_per_trigger)
        ),
        shuffle_partitions=args.shuffle_partitions,
        max_future_seconds=args.max_future,
        security=KafkaSecurity(
            protocol=args.security_protocol,
            mechanism=args.sasl_mechanism,
            username=args.sasl_username,
            password=password,
            ssl_cafile=args.ssl_cafile,
        ),
        connect_timeout_s=args.connect_timeout,
        dedupe_window=args.dedupe_window,
    )


# --------------------------------------------------------------------------------------------
# The transformation: pure DataFrame -> DataFrame functions, the same for batch and stream
# --------------------------------------------------------------------------------------------


def classify_records(records: DataFrame, max_future_seconds: int = 86_400) -> DataFrame:
    """Parse Kafka records into events and give every invalid one a ``rejected_reason``.

    Input: Kafka records with at least ``value`` (binary) and ``kafka_timestamp``; their
    columns are kept (the quarantine needs ``topic``, ``partition``, ``offset``). Output
    adds ``event_id``, ``user_id``, ``event_time`` (timestamp), ``success`` and
    ``rejected_reason`` (null for a valid event). Nothing is dropped here: the caller
    decides what to count and what to quarantine.

    A future event time is judged against the record's Kafka timestamp rather than the
    clock, so replaying a batch after a crash classifies every record the same way.
    """
    value = F.col("value")
    text = value.cast("string")
    parsed = F.from_json(
        text, EVENT_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}
    )
    # explode(array(x)) yields x once per row. It is here as an optimizer barrier: without
    # it, filter pushdown copies from_json into every CASE branch below, parsing each
    # record a dozen times (measured: 5x slower for the quarantine query's filter).
    with_event = records.select("*", F.explode(F.array(parsed)).alias("_event"))
    e = F.col("_event")
    corrupt = e["_corrupt_record"].isNotNull()
    event_time = F.when(
        e["timestamp"].rlike(ISO_TIMESTAMP), e["timestamp"].try_cast(T.TimestampType())
    )
    reason = (
        F.when(value.isNull() | (F.length(value) == 0), "empty_value")
        .when(~F.is_valid_utf8(value), "invalid_utf8")
        .when(F.length(value) > MAX_EVENT_BYTES, "oversized")
        # Arrays, scalars and broken text are not objects; only checked for corrupt records.
        .when(corrupt & F.json_object_keys(text).isNull(), "not_json_object")
        .when(corrupt, "wrong_type")
        .when(e["event_id"].isNull() | (F.length(e["event_id"]) == 0), "missing_event_id")
        .when(e["user_id"].isNull() | (F.length(e["user_id"]) == 0), "missing_user_id")
        .when(e["timestamp"].isNull(), "missing_timestamp")
        .when(e["success"].isNull(), "missing_success")
        .when(event_time.isNull(), "invalid_timestamp")
        .when(
            event_time > F.col("kafka_timestamp") + F.make_interval(secs=F.lit(max_future_seconds)),
            "future_timestamp",
        )
        .when(
            e["schema_version"].isNotNull() & (e["schema_version"] != SUPPORTED_SCHEMA_VERSION),
            "unsupported_schema_version",
        )
    )
    return with_event.select(
        *records.columns,
        e["event_id"].alias("event_id"),
        e["user_id"].alias("user_id"),
        event_time.alias("event_time"),
        e["success"].alias("success"),
        reason.alias("rejected_reason"),
    )


def drop_repeated_events(classified: DataFrame, window: str | None) -> DataFrame:
    """Keep the first record of each ``event_id`` seen within ``window`` of processing time.

    The policy for a repeated event id: a producer that is restarted and replays (or a
    client that retries outside Kafka's idempotence) must not inflate the counts. The key
    is the processing time, not the event time, so a backfill of old events is never
    dropped as late data; Spark records each batch's timestamp in the checkpoint, so a
    replayed batch drops exactly the same records. Rejected records are keyed by their
    Kafka coordinates and therefore never merged. ``window=None`` keeps every record.
    """
    if window is None:
        return classified
    key = F.when(F.col("rejected_reason").isNull(), F.col("event_id")).otherwise(
        F.concat_ws(":", F.lit("record"), F.col("partition"), F.col("offset"))
    )
    keyed = classified.withColumn("_dedupe_key", key)
    if not classified.isStreaming:  # a batch is one window: plain deduplication
        return keyed.dropDuplicates(["_dedupe_key"]).drop("_dedupe_key")
    return (
        keyed.withColumn("_processed_at", F.current_timestamp())
        .withWatermark("_processed_at", window)
        .dropDuplicatesWithinWatermark(["_dedupe_key"])
        .drop("_dedupe_key", "_processed_at")
    )


def month_of(event_time: Column) -> Column:
    """``YYYY-MM`` of ``event_time`` in the session time zone (``spark.sql.session.timeZone``).

    Spark's ``window()`` cannot do calendar months (they have no fixed length), so the
    month is a grouping key instead.
    """
    return F.date_format(event_time, "yyyy-MM")


def aggregate_outcomes(classified: DataFrame) -> DataFrame:
    """Counts per (month, rejected_reason): the one aggregation the streaming query keeps.

    Valid events have a month and no reason; rejected records have a reason and no month.
    One small state table serves both the monthly table and the rejection counts.
    """
    valid = F.col("rejected_reason").isNull()
    return classified.groupBy(
        F.when(valid, month_of(F.col("event_time"))).alias("month"),
        F.col("rejected_reason"),
    ).agg(
        F.count(F.lit(1)).alias("records"),
        F.sum(F.when(valid & F.col("success"), 1).otherwise(0)).alias("successful"),
    )


@dataclass(frozen=True)
class Tables:
    """What one batch reports: the monthly table and the rejections, both sorted.

    ``months``: ``(month, logins, successful, failed)``; ``rejected``: ``(reason, records)``.
    """

    months: list[tuple[str, int, int, int]]
    rejected: list[tuple[str, int]]


def tables_from_outcomes(outcomes: Iterable[Row]) -> Tables:
    """Shape the collected rows of :func:`aggregate_outcomes` into the two tables.

    The outcomes hold one row per month and per rejection reason, a few hundred at most,
    so they are collected once per batch and shaped here: a Spark sort and a second
    aggregation would each be another job on every batch (measured: 0.4 s each warm).
    """
    months: list[tuple[str, int, int, int]] = []
    rejected: dict[str, int] = {}
    for row in outcomes:
        if row["rejected_reason"] is None:
            logins, successful = row["records"], row["successful"]
            months.append((row["month"], logins, successful, logins - successful))
        else:
            reason = row["rejected_reason"]
            rejected[reason] = rejected.get(reason, 0) + row["records"]
    return Tables(sorted(months), sorted(rejected.items()))


# --------------------------------------------------------------------------------------------
# Output: console table, CSV and quarantine
# --------------------------------------------------------------------------------------------


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)


class MonthlyOutput:
    """foreachBatch sink of the aggregation: prints the table, writes the CSV files, and has
    the batch's rejected records quarantined."""

    def __init__(self, options: JobOptions, quarantine: Quarantine | None = None) -> None:
        self.options = options
        self.quarantine = quarantine
        self.batches_written = 0

    def __call__(self, outcomes: DataFrame, batch_id: int) -> None:
        tables = tables_from_outcomes(outcomes.collect())
        months, rejected = tables.months, tables.rejected
        if self.quarantine is not None:
            self.quarantine.after_batch(batch_id, sum(count for _, count in rejected))
        print(format_report(batch_id, self.options.timezone, months, rejected), flush=True)
        if self.options.output_dir:
            out = Path(self.options.output_dir)
            write_csv_atomically(
                out / MONTHLY_CSV, ("month", "logins", "successful", "failed"), months
            )
            write_csv_atomically(out / REJECTED_CSV, ("reason", "records"), rejected)
        self.batches_written += 1


def format_report(
    batch_id: int,
    zone: str,
    months: Sequence[Sequence[Any]],
    rejected: Sequence[Sequence[Any]],
) -> str:
    """The console output of one batch: the monthly table with totals, then rejections."""
    total = [sum(r[i] for r in months) for i in (1, 2, 3)]
    rows = [*months, ("total", *total)] if months else []
    heading = f"Batch {batch_id}: logins per calendar month ({zone})"
    text = [heading, render_table(("month", "logins", "successful", "failed"), rows)]
    if not months:
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
        self.offsets_dir = Path(options.checkpoint_dir) / "monthly" / "offsets"
        self.initial_offsets = Path(options.checkpoint_dir) / "monthly" / "sources" / "0" / "0"
        self.progress_dir = Path(options.checkpoint_dir) / "quarantine-progress"

    def after_batch(self, batch_id: int, rejected_total: int) -> None:
        """Quarantine this batch's rejected records, if it had any."""
        previous = self._recorded_total(batch_id - 1) if batch_id > 0 else 0
        if previous is None or rejected_total > previous:
            self._extract(batch_id)
        self.progress_dir.mkdir(parents=True, exist_ok=True)
        marker = self.progress_dir / str(batch_id)
        marker.with_suffix(".tmp").write_text(f"{rejected_total}\n")
        marker.with_suffix(".tmp").replace(marker)

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

    def _extract(self, batch_id: int) -> None:
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
        )
        for key, value in self.options.kafka_properties().items():
            reader = reader.option(f"kafka.{key}", value)
        records = reader.load().withColumnRenamed("timestamp", "kafka_timestamp")
        rejected = classify_records(records, self.options.max_future_seconds).where(
            F.col("rejected_reason").isNotNull()
        )
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


# --------------------------------------------------------------------------------------------
# Running the streaming queries
# --------------------------------------------------------------------------------------------


class BatchReporter(StreamingQueryListener):
    """One line per batch: rows read, rows/s, rejected rows, duration (from query progress).

    Spark delivers listener events asynchronously; ``last_batch_id`` lets the run wait for
    the final line before it prints its summary.
    """

    def __init__(self) -> None:
        self.last_batch_id = -1

    def onQueryStarted(self, event: Any) -> None:  # noqa: N802 - Spark's listener API
        pass

    def onQueryProgress(self, event: Any) -> None:  # noqa: N802
        progress = event.progress
        if progress.name != APP_NAME:
            return
        metrics = progress.observedMetrics.get("batch")
        unique = progress.observedMetrics.get("unique")
        rejected = (metrics["rejected"] or 0) if metrics is not None else 0
        repeated = (metrics["records"] - unique["records"]) if metrics and unique else 0
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
            f"{rejected:,} rejected, {repeated:,} repeated event ids dropped, "
            f"{duration_ms / 1000:.2f} s ({arrival}processed "
            f"{progress.processedRowsPerSecond:,.0f} records/s)",
            flush=True,
        )

    def onQueryIdle(self, event: Any) -> None:  # noqa: N802
        pass

    def onQueryTerminated(self, event: Any) -> None:  # noqa: N802
        pass


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
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    return spark


def check_kafka(spark: SparkSession, options: JobOptions) -> int:
    """Fail fast, and clearly, if Kafka is unreachable, refuses us, or lacks the topic.

    Spark's Kafka source would otherwise retry for minutes or, for a missing topic, run
    with empty batches and print an empty table. Uses the Kafka client that the connector
    puts on the driver's classpath. Returns the topic's partition count.
    """
    jvm = spark.sparkContext._jvm  # py4j gateway: how PySpark code reaches JVM classes
    assert jvm is not None
    props = jvm.java.util.Properties()
    for key, value in options.kafka_properties().items():
        props.setProperty(key, value)
    timeout_ms = str(options.connect_timeout_s * 1000)
    props.setProperty("request.timeout.ms", timeout_ms)
    props.setProperty("default.api.timeout.ms", timeout_ms)
    seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
        names = admin.listTopics().names().get(options.connect_timeout_s + 5, seconds)
        if not names.contains(options.topic):
            available = sorted(str(n) for n in names.toArray() if not str(n).startswith("__"))
            raise JobError(
                f"topic {options.topic!r} does not exist on {options.bootstrap_servers} "
                f"(topics there: {', '.join(available) or 'none'}). Create it by running the "
                "producer (it creates the topic), or pass the right --topic / LOGINS_TOPIC.",
                EXIT_KAFKA,
            )
        description = admin.describeTopics(jvm.java.util.List.of(options.topic))
        topic = description.allTopicNames().get(options.connect_timeout_s + 5, seconds)
        return int(topic.get(options.topic).partitions().size())
    except Exception as exc:  # py4j wraps Java exceptions; classify by their text
        if isinstance(exc, JobError):
            raise
        text = str(exc)
        if "No resolvable bootstrap urls" in text:
            raise JobError(
                f"no address of Kafka at {options.bootstrap_servers} resolves (DNS). Is the "
                "broker running (`make local-up`, or `make up` with Docker), and is "
                "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS right?",
                EXIT_KAFKA,
            ) from None
        tls = explain_tls_failure(text, options)
        if tls is not None:
            raise JobError(tls, EXIT_KAFKA) from None
        if "Authentication" in text or "SaslAuthentication" in text:
            raise JobError(
                f"Kafka at {options.bootstrap_servers} rejected the credentials of "
                f"{options.security.username!r} ({options.security.mechanism}). Check "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.",
                EXIT_KAFKA,
            ) from None
        if "Timeout" in text or "timed out" in text:
            raise JobError(
                f"Kafka at {options.bootstrap_servers} did not answer within "
                f"{options.connect_timeout_s}s. Is the broker running (`make local-up` or "
                "`make up`), and is --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS right?",
                EXIT_KAFKA,
            ) from None
        raise
    finally:
        if admin is not None:
            admin.close()


_CERT_EXPIRED = re.compile(r"CertificateExpiredException: (?P<detail>[^\n]+)")
_CERT_NOT_YET_VALID = re.compile(r"CertificateNotYetValidException: (?P<detail>[^\n]+)")
_CERT_NAME = re.compile(r"CertificateException: (?P<detail>No (?:subject alternative|name)[^\n]+)")
_HANDSHAKE = re.compile(r"SSLHandshakeException: (?P<detail>[^\n]+)")


def explain_tls_failure(text: str, options: JobOptions) -> str | None:
    """What was wrong with the broker's certificate, from the Java client's exception text.

    Kafka reports every failed TLS handshake as an ``SslAuthenticationException``; without
    this, the credentials message would blame a SASL user and password that a TLS-only
    setup does not even have. The JSSE cause underneath says whether the certificate was
    expired, for another name, or signed by a CA the job does not trust, and each has a
    different fix.
    """
    if "SslAuthenticationException" not in text and "SSLHandshakeException" not in text:
        return None
    where = f"Kafka at {options.bootstrap_servers}"
    cafile = options.security.ssl_cafile
    trusted = f"the CA in {cafile}" if cafile else "the JVM's default CA certificates"
    if match := _CERT_EXPIRED.search(text):
        until = match["detail"].replace("NotAfter:", "").strip()
        return (
            f"{where} presented a TLS certificate that has expired (valid until {until}). The "
            "broker's operator must renew it (if the date looks wrong, check this machine's "
            "clock); do not turn certificate verification off."
        )
    if match := _CERT_NOT_YET_VALID.search(text):
        since = match["detail"].replace("NotBefore:", "").strip()
        return (
            f"{where} presented a TLS certificate that is not valid yet (valid from {since}). "
            "Check this machine's clock, or wait until the certificate's start date."
        )
    if match := _CERT_NAME.search(text):
        return (
            f"{where} presented a TLS certificate that was not issued for this address "
            f"({match['detail'].strip()}). Connect with a host name the certificate lists "
            "(--bootstrap-servers), or have the certificate reissued with this name."
        )
    if "PKIX path building failed" in text or "unable to find valid certification path" in text:
        return (
            f"{where} presented a TLS certificate that is not trusted: it is not signed by "
            f"{trusted} (unable to find a valid certification path). Pass the CA certificate "
            "(PEM) that signed the broker's certificate with --ssl-cafile / KAFKA_SSL_CAFILE."
        )
    match = _HANDSHAKE.search(text)
    detail = match["detail"].strip() if match else "SSL handshake failed"
    return (
        f"the TLS handshake with {where} failed ({detail[:300]}). Check that this address is "
        "a TLS listener (for one without TLS use --security-protocol PLAINTEXT or "
        "SASL_PLAINTEXT) and that --ssl-cafile / KAFKA_SSL_CAFILE is the CA that signed "
        "its certificate."
    )


def checkpoint_marker(options: JobOptions) -> Path:
    """``pipeline.json``, next to Spark's own files in the checkpoint."""
    return Path(options.checkpoint_dir) / "pipeline.json"


def checkpoint_identity(options: JobOptions) -> dict[str, Any]:
    """What a checkpoint is only valid for; kept in :func:`checkpoint_marker`."""
    return {
        "job": APP_NAME,
        "topic": options.topic,
        "timezone": options.timezone,
        "deduplication": options.dedupe_window is not None,
    }


def check_checkpoint(options: JobOptions) -> None:
    """Refuse a checkpoint written for another topic, time zone or deduplication setting.

    Spark would resume from it without complaint and mix months of two time zones (or
    offsets of two topics) into one table, or fail deep in its state store when the
    deduplication step appears or disappears. Only files are read, so this runs before
    the Spark session starts and a wrong checkpoint is refused in a second.
    """
    identity = checkpoint_identity(options)
    marker = checkpoint_marker(options)
    if marker.exists():
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise JobError(f"cannot read {marker}: {exc}", EXIT_CHECKPOINT) from None
        different = {k: (recorded.get(k), v) for k, v in identity.items() if recorded.get(k) != v}
        if different:
            detail = ", ".join(f"{k} {old!r} (now {new!r})" for k, (old, new) in different.items())
            raise JobError(
                f"the checkpoint {options.checkpoint_dir} belongs to another query: it was "
                f"started with {detail}. Use a new --checkpoint-dir, or delete this one to "
                "recount from the start of the topic.",
                EXIT_CHECKPOINT,
            )
        return
    existing = Path(options.checkpoint_dir)
    if existing.exists() and any(existing.iterdir()):
        raise JobError(
            f"{options.checkpoint_dir} is not empty and was not written by this job. "
            "Use a new --checkpoint-dir.",
            EXIT_CHECKPOINT,
        )


def record_checkpoint_identity(options: JobOptions) -> None:
    """Written once Kafka has answered, so a run that never started claims no checkpoint."""
    marker = checkpoint_marker(options)
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(checkpoint_identity(options), indent=2) + "\n")


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
    for key, value in options.kafka_properties().items():
        reader = reader.option(f"kafka.{key}", value)
    if options.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    return reader.load().withColumnRenamed("timestamp", "kafka_timestamp")


def start_queries(spark: SparkSession, options: JobOptions) -> list[StreamingQuery]:
    """The counting query; its sink also has each batch's rejected records quarantined."""
    classified = classify_records(read_kafka(spark, options), options.max_future_seconds)
    observed = classified.observe(
        "batch",
        F.count(F.lit(1)).alias("records"),
        F.count("rejected_reason").alias("rejected"),
    )
    # Counted after deduplication: the difference to "records" is the repeats dropped.
    unique = drop_repeated_events(observed, options.dedupe_window).observe(
        "unique", F.count(F.lit(1)).alias("records")
    )

    def with_trigger(writer: Any) -> Any:
        if options.trigger == "available-now":
            return writer.trigger(availableNow=True)
        return writer.trigger(processingTime=options.trigger)

    monthly_output = MonthlyOutput(options, Quarantine(options, spark))
    counting = with_trigger(
        aggregate_outcomes(unique)
        .writeStream.queryName(APP_NAME)
        .outputMode("complete")
        .option("checkpointLocation", f"{options.checkpoint_dir}/monthly")
        .foreachBatch(monthly_output)
    ).start()
    counting.monthly_output = monthly_output  # type: ignore[attr-defined]
    return [counting]


def print_previous_result(options: JobOptions) -> None:
    """For an available-now run with nothing new: show the table the last run left."""
    print(
        f"No new records on {options.topic!r} since the last run "
        f"(checkpoint {options.checkpoint_dir})."
    )
    if options.output_dir and (Path(options.output_dir) / MONTHLY_CSV).exists():
        with (Path(options.output_dir) / MONTHLY_CSV).open(newline="") as handle:
            rows = list(csv.reader(handle))
        print(f"Latest table ({Path(options.output_dir) / MONTHLY_CSV}):")
        print(render_table(rows[0], rows[1:]))


def explain_failure(exc: Exception, options: JobOptions) -> JobError:
    text = str(exc)
    if "state schema" in text.lower() or "STATE_STORE" in text or "incompatible" in text.lower():
        return JobError(
            f"the checkpoint {options.checkpoint_dir} was written by an incompatible version "
            f"of this query ({text.splitlines()[0][:300]}). Use a new --checkpoint-dir.",
            EXIT_CHECKPOINT,
        )
    if "failOnDataLoss" in text:
        return JobError(
            f"the streaming query failed: records that the checkpoint {options.checkpoint_dir} "
            f"has not counted yet are gone from {options.topic!r} (the topic was deleted and "
            "recreated, or retention removed them first). The job stops rather than skip them "
            "silently. To count what the topic holds now, use a new --checkpoint-dir.",
            EXIT_FAILED,
        )
    return JobError(f"the streaming query failed: {text[:2000]}", EXIT_FAILED)


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


def await_query(query: StreamingQuery, stop: StopRequest, poll_s: float = 0.5) -> bool:
    """Wait until the query ends; True if it was stopped because a stop was requested."""
    while not query.awaitTermination(poll_s):
        if stop.requested.is_set():
            query.stop()
            return True
    return False


def last_committed_batch(options: JobOptions) -> int | None:
    """The newest batch id in the query's commit log: what a rerun resumes after."""
    commits = Path(options.checkpoint_dir) / "monthly" / "commits"
    ids = [int(p.name) for p in commits.glob("*") if p.name.isdigit()] if commits.is_dir() else []
    return max(ids, default=None)


def print_stopped(options: JobOptions) -> None:
    last = last_committed_batch(options)
    where = f"after batch {last}" if last is not None else "before its first batch"
    print(
        f"Stopped {where}. Progress is in the checkpoint {options.checkpoint_dir}: "
        "rerun the same command to resume.",
        flush=True,
    )


def run(spark: SparkSession, options: JobOptions, stop: StopRequest) -> None:
    check_kafka(spark, options)
    if stop.requested.is_set():
        print("Stopped before the query started.", flush=True)
        return
    record_checkpoint_identity(options)
    reporter = BatchReporter()
    spark.streams.addListener(reporter)
    started = time.monotonic()
    queries = start_queries(spark, options)
    query = queries[0]
    if options.trigger == "available-now":
        print(f"Counting the records on {options.topic!r} up to now, then stopping.", flush=True)
    else:
        print(
            f"Counting new records on {options.topic!r} every {options.trigger}; "
            "Ctrl-C stops between batches (a rerun resumes).",
            flush=True,
        )
    output: MonthlyOutput = query.monthly_output  # type: ignore[attr-defined]
    try:
        stopped = await_query(query, stop)
        drained_s = time.monotonic() - started
    except PySparkException as exc:
        raise explain_failure(exc, options) from None
    finally:
        for each in queries:
            if each.isActive:
                each.stop()
    if stopped:
        wait_for_report(reporter, query)
        print_stopped(options)
        return
    for each in queries:
        if each.exception() is not None:
            raise explain_failure(Exception(str(each.exception())), options)
    if options.trigger == "available-now":
        if output.batches_written == 0:
            print_previous_result(options)
        else:
            wait_for_report(reporter, query)
        finished = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"Drained {options.topic!r} in {drained_s:.1f} s (finished {finished}).", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv, os.environ)
    stop = StopRequest()
    stop.install()
    try:
        check_checkpoint(options)  # before Spark starts: a wrong checkpoint fails in a second
        spark = build_spark(options)
        stop.install()  # again: the SparkContext replaced the SIGINT handler with its own
        try:
            run(spark, options, stop)
        finally:
            spark.stop()
    except JobError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
