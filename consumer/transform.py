"""The counting itself: pure DataFrame -> DataFrame functions, the same for batch and
stream, so tests run them on small batch DataFrames.

classify (parse and give every invalid record a reason) -> drop repeated event ids ->
bucket event time into periods -> aggregate -> shape the two tables."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Row
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention
from pyspark.sql import types as T  # noqa: N812

from contract.events import MAX_EVENT_BYTES, SCHEMA_VERSION
from contract.tables import DEFAULT_PERIOD, PERIODS

# The fields the job relies on, typed. Other fields of the event are ignored here.
EVENT_SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.StringType()),
        T.StructField("user_id", T.StringType()),
        T.StructField("timestamp", T.StringType()),
        T.StructField("success", T.BooleanType()),
        T.StructField("schema_version", T.IntegerType()),
        # The source address: only the alerts read it (not checked: it is not counted).
        T.StructField("ip_address", T.StringType()),
        # Filled by from_json when a field has the wrong JSON type, or the text is not JSON.
        T.StructField("_corrupt_record", T.StringType()),
    ]
)


# ISO-8601 with an explicit zone (Z or +hh:mm): a time without a zone is ambiguous.
ISO_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"


def parse_events(records: DataFrame, barrier: bool = False) -> DataFrame:
    """``records`` with ``_event``: the JSON value parsed into :data:`EVENT_SCHEMA`.

    A value that is not a JSON object, or has a field of the wrong JSON type, gives an
    ``_event`` whose ``_corrupt_record`` is set. ``barrier`` is for a caller that filters
    on what it classifies: filter pushdown would copy the parse into every use of
    ``_event`` in the filter, parsing each record a dozen times (measured: 5x slower), and
    ``explode(array(x))`` (x once per row) stops it. It costs a copy of every row, and the
    counting query, which filters nothing, runs without it: Spark then keeps the parse in
    a projection of its own, since it is used more than once.
    """
    text = F.col("value").cast("string")
    parsed = F.from_json(
        text, EVENT_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}
    )
    if barrier:
        return records.select("*", F.explode(F.array(parsed)).alias("_event"))
    return records.select("*", parsed.alias("_event"))


def classify_records(
    records: DataFrame, max_future_seconds: int = 86_400, *, for_filtering: bool = False
) -> DataFrame:
    """Parse Kafka records into events and give every invalid one a ``rejected_reason``.

    Input: Kafka records with at least ``value`` (binary) and ``kafka_timestamp``; their
    columns are kept (the quarantine needs ``topic``, ``partition``, ``offset``). Output
    adds ``event_id``, ``user_id``, ``event_time`` (timestamp), ``success``, ``ip_address`` and
    ``rejected_reason`` (null for a valid event). Nothing is dropped here: the caller
    decides what to count and what to quarantine; one that filters on the result passes
    ``for_filtering=True`` (see :func:`parse_events`).

    A future event time is judged against the record's Kafka timestamp rather than the
    clock, so replaying a batch after a crash classifies every record the same way.
    """
    value = F.col("value")
    text = value.cast("string")
    with_event = parse_events(records, barrier=for_filtering)
    e = F.col("_event")
    # The event time in a step of its own: the checks below use it three times, and as a
    # column it is parsed once (Spark keeps the two projections apart rather than copy an
    # expensive expression into each use).
    timed = with_event.select(
        "*",
        F.when(
            e["timestamp"].rlike(ISO_TIMESTAMP), e["timestamp"].try_cast(T.TimestampType())
        ).alias("event_time"),
    )
    event_time = F.col("event_time")
    corrupt = e["_corrupt_record"].isNotNull()
    # Compared in microseconds: a timestamp plus an interval goes through Spark's calendar
    # arithmetic (time zone and all) for every record, and shows in the drain's profile.
    ahead_us = F.unix_micros(event_time) - F.unix_micros(F.col("kafka_timestamp"))
    in_future = ahead_us > F.lit(max_future_seconds * 1_000_000)
    version_supported = e["schema_version"].isNull() | (e["schema_version"] == SCHEMA_VERSION)
    # Nearly every record is valid: one conjunction that holds exactly when none of the
    # reasons below applies settles them, and only the others walk the chain for a reason.
    valid = (
        F.length(value).between(1, MAX_EVENT_BYTES)
        & e["_corrupt_record"].isNull()
        & (e["event_id"] != "")
        & (e["user_id"] != "")
        & e["success"].isNotNull()
        & ~in_future
        & version_supported
        & F.is_valid_utf8(value)
    )
    reason = (
        F.when(valid, F.lit(None).cast(T.StringType()))
        .when(value.isNull() | (F.length(value) == 0), "empty_value")
        .when(~F.is_valid_utf8(value), "invalid_utf8")
        .when(F.length(value) > MAX_EVENT_BYTES, "oversized")
        # Arrays, scalars and broken text are not objects; only checked for corrupt records.
        .when(corrupt & F.json_object_keys(text).isNull(), "not_json_object")
        .when(corrupt, "wrong_type")
        .when(e["event_id"].isNull() | (e["event_id"] == ""), "missing_event_id")
        .when(e["user_id"].isNull() | (e["user_id"] == ""), "missing_user_id")
        .when(e["timestamp"].isNull(), "missing_timestamp")
        .when(e["success"].isNull(), "missing_success")
        .when(event_time.isNull(), "invalid_timestamp")
        .when(in_future, "future_timestamp")
        .when(~version_supported, "unsupported_schema_version")
    )
    return timed.select(
        *records.columns,
        e["event_id"].alias("event_id"),
        e["user_id"].alias("user_id"),
        event_time,
        e["success"].alias("success"),
        e["ip_address"].alias("ip_address"),
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

    The key is one string, so that the state of checkpoints stays readable: an event id as
    it is, a rejected record ``record:<partition>:<offset>``. An event id that itself starts
    with ``record:`` or ``event:`` gets ``event:`` in front, so no event id can take a
    rejected record's key or another id's (ordinary ids, such as UUIDs, are unchanged).
    """
    if window is None:
        return classified
    event_id = F.col("event_id")
    escaped = event_id.startswith("record:") | event_id.startswith("event:")
    key = (
        F.when(
            F.col("rejected_reason").isNotNull(),
            F.concat_ws(":", F.lit("record"), F.col("partition"), F.col("offset")),
        )
        .when(escaped, F.concat(F.lit("event:"), event_id))
        .otherwise(event_id)
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


def bucket_of(event_time: Column, period: str = DEFAULT_PERIOD) -> Column:
    """The period of ``event_time`` in the session time zone (``spark.sql.session.timeZone``).

    ``month``: ``2026-11``; ``week``: the ISO week ``2026-W48`` (weeks start on Monday and
    belong to the year of their Thursday, so 2026-12-31 can be in ``2027-W01``); ``day``:
    ``2026-11-26``. Spark's ``window()`` cannot do calendar months (they have no fixed
    length), and its week-based date patterns are gone since Spark 3, so the period is a
    grouping key built here. A new period needs a case here and a ``Period`` in
    ``contract/tables.py``.
    """
    if period == "month":
        return F.date_format(event_time, "yyyy-MM")
    if period == "day":
        return F.date_format(event_time, "yyyy-MM-dd")
    if period == "week":
        thursday = F.date_add(F.to_date(event_time), 3 - F.weekday(event_time))
        week = F.lpad(F.weekofyear(event_time).cast("string"), 2, "0")
        return F.concat(F.year(thursday).cast("string"), F.lit("-W"), week)
    raise ValueError(f"unknown period {period!r}; known: {', '.join(PERIODS)}")


def aggregate_outcomes(classified: DataFrame, period: str = DEFAULT_PERIOD) -> DataFrame:
    """Counts per (period, rejected_reason): the one aggregation the streaming query keeps.

    Valid events have a period (``bucket``) and no reason; rejected records have a reason
    and no period. One small state table serves both the table and the rejection counts.
    """
    valid = F.col("rejected_reason").isNull()
    return classified.groupBy(
        F.when(valid, bucket_of(F.col("event_time"), period)).alias("bucket"),
        F.col("rejected_reason"),
    ).agg(
        F.count(F.lit(1)).alias("records"),
        F.sum(F.when(valid & F.col("success"), 1).otherwise(0)).alias("successful"),
    )


@dataclass(frozen=True)
class Tables:
    """What one batch reports: the counts per period and the rejections, both sorted.

    ``counts``: ``(period, logins, successful, failed)``; ``rejected``: ``(reason, records)``.
    """

    counts: list[tuple[str, int, int, int]]
    rejected: list[tuple[str, int]]


def tables_from_outcomes(outcomes: Iterable[Row]) -> Tables:
    """Shape the collected rows of :func:`aggregate_outcomes` into the two tables.

    The outcomes hold one row per period and per rejection reason, a few hundred at most,
    so they are collected once per batch and shaped here: a Spark sort and a second
    aggregation would each be another job on every batch (measured: 0.4 s each warm).
    """
    counts: list[tuple[str, int, int, int]] = []
    rejected: dict[str, int] = {}
    for row in outcomes:
        if row["rejected_reason"] is None:
            logins, successful = row["records"], row["successful"]
            counts.append((row["bucket"], logins, successful, logins - successful))
        else:
            reason = row["rejected_reason"]
            rejected[reason] = rejected.get(reason, 0) + row["records"]
    return Tables(sorted(counts), sorted(rejected.items()))
