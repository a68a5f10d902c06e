"""Credential-stuffing detection: pure DataFrame -> DataFrame functions, the same for batch
and stream, so tests run them on small batch DataFrames.

Kafka records -> those that can be failed logins -> classified
(:func:`consumer.transform.classify_records`) -> the failed logins of
valid events -> failed logins and distinct accounts per address in sliding windows of
event time -> the windows that cross the rule (:class:`contract.alerts.AlertRule`).

Rejected records never reach a window: bad input is quarantined, never alerted on.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention

from contract.alerts import AlertRule


def failed_login_candidates(records: DataFrame) -> DataFrame:
    """The Kafka records that can hold a failed login: their text has the literal
    ``false``, which JSON never escapes. The rest (nearly all successes) need no parse,
    so the detector classifies a few percent of the records the counts do."""
    return records.where(F.contains(F.col("value"), F.lit(bytearray(b"false"))))


def failed_logins(classified: DataFrame) -> DataFrame:
    """``address``, ``event_id``, ``user_id`` and ``event_time`` of every failed login of a
    valid event that names its source address."""
    address = F.col("ip_address")
    return classified.where(
        F.col("rejected_reason").isNull() & ~F.col("success") & (address != "")
    ).select(address.alias("address"), "event_id", "user_id", "event_time")


def alert_windows(failed: DataFrame, rule: AlertRule) -> DataFrame:
    """The (address, window) pairs whose failed logins cross ``rule``, with what they hold.

    On a stream the watermark bounds the state: a window is dropped ``rule.watermark_s``
    after its end (by event time), and an event later than that is dropped too (Spark
    reports it as a late row). Failed logins and accounts are sets per window (of event
    ids and user ids): a record the producer sent twice counts once, as in the monthly
    counts, and Spark cannot count distinct values on a stream otherwise. Only failed
    logins enter the state, a few percent of ordinary traffic plus the bursts.
    """
    if failed.isStreaming:
        failed = failed.withWatermark("event_time", f"{rule.watermark_s} seconds")
    window = F.window("event_time", f"{rule.window_s} seconds", f"{rule.slide_s} seconds")
    windows = failed.groupBy(window.alias("window"), "address").agg(
        F.size(F.collect_set("event_id")).alias("failed"),
        F.size(F.collect_set("user_id")).alias("accounts"),
        F.min("event_time").alias("first_event_time"),
        F.max("event_time").alias("last_event_time"),
    )
    return windows.where(
        (F.col("failed") >= rule.min_failed) & (F.col("accounts") >= rule.min_accounts)
    ).select(
        "address",
        F.col("window.start").alias("window_start"),
        F.col("window.end").alias("window_end"),
        "failed",
        "accounts",
        "first_event_time",
        "last_event_time",
    )
