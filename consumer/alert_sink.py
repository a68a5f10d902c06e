"""Where credential-stuffing alerts go: the alerts table, the alerts topic, one console line.

foreachBatch sink of the detector's query (update mode: a window appears in every batch
that changed it). The database table is the ledger that makes an alert happen once per
(address, window), also when Spark replays a batch after a crash:

1. the batch's windows are upserted into ``login_alerts``; a window not there before is a
   new alert (``detected_at`` now), one already there only gets its grown counts;
2. every alert not yet published (this batch's new ones, and any a crash left between
   steps 1 and 3) is written to the alerts topic, keyed by address, with the Kafka client
   Spark's connector brings (Java, through py4j: no second client library);
3. those alerts are marked published, and each incident (an address's overlapping new
   windows, :func:`incidents`) gets one line.

A crash between Kafka's acknowledgement and step 3 leaves alerts that are on the topic
but not marked. So the first batch of a run that finds unpublished alerts reads the topic
back from just before the oldest of them was detected, marks those it finds there, and
publishes only the rest: each alert is on the topic once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention

from consumer.database import EXIT_DATABASE, create_db_engine, describe, is_transient, masked
from consumer.errors import JobError
from consumer.guards import client_properties
from consumer.options import JobOptions
from consumer.retry import Backoff, RetriesExhaustedError, call_with_retries
from contract.alerts import alert_record, incidents, utc_text
from contract.tables import ALERTS_TABLE, as_utc

TIME_COLUMNS = ("window_start", "window_end", "first_event_time", "last_event_time")


def window_rows(windows: DataFrame) -> list[dict[str, Any]]:
    """The batch's windows as dicts with UTC datetimes.

    Times travel as epoch milliseconds: PySpark would turn a timestamp into a naive
    datetime in the Python process's own time zone.
    """
    millis = windows.select(
        "address", "failed", "accounts", *(F.unix_millis(c).alias(c) for c in TIME_COLUMNS)
    )
    return [
        {
            **row.asDict(),
            **{c: datetime.fromtimestamp(row[c] / 1000, timezone.utc) for c in TIME_COLUMNS},
        }
        for row in millis.collect()
    ]


def format_alert_line(alerts: Sequence[Mapping[str, Any]]) -> str:
    """One console line for one incident's new alerts (:func:`incidents`)."""
    first = min(a["first_event_time"] for a in alerts)
    last = max(a["last_event_time"] for a in alerts)
    worst = max(alerts, key=lambda a: (a["failed"], a["accounts"]))
    seconds = (worst["window_end"] - worst["window_start"]).total_seconds()
    until = f"{last:%H:%M:%S}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M:%S}"
    windows = len(alerts)
    return (
        f"ALERT {alerts[0]['address']}: {worst['failed']} failed logins against "
        f"{worst['accounts']} accounts in {seconds:g} s (events {first:%Y-%m-%d %H:%M:%S}"
        f"-{until} UTC; {windows} new window{'s' if windows != 1 else ''})"
    )


class AlertOutput:
    """foreachBatch sink of the detector (see the module)."""

    def __init__(self, options: JobOptions, spark: SparkSession, topic: str) -> None:
        import sqlalchemy as sa

        from consumer.database import build_metadata

        assert options.db_url is not None, "alerts need the database as their ledger"
        self.options = options
        self.spark = spark
        self.topic = topic
        self.failure: JobError | None = None
        self.table = build_metadata().tables[ALERTS_TABLE]
        self.engine = create_db_engine(options.db_url)
        self.table.create(self.engine, checkfirst=True)
        self.backoff = Backoff(options.db_retry_timeout_s)
        self._sa = sa
        self.reconciled = False  # the run's first batch checks the topic for a crash's leftovers
        self._kafka: Any = None  # the Java producer, made on the first alert

    def __call__(self, windows: DataFrame, batch_id: int) -> None:
        try:
            rows = window_rows(windows)
            new = self._in_database(lambda: self._record(rows, batch_id), batch_id)
            pending = new
            if not self.reconciled:  # the run's first batch: leftovers of a crash?
                pending = self._in_database(self._unpublished, batch_id)
                mine = {(a["address"], a["window_start"]) for a in new}
                earlier = [a for a in pending if (a["address"], a["window_start"]) not in mine]
                if earlier:
                    kept = self._not_on_topic(earlier, batch_id)
                    pending = [a for a in pending if a not in earlier or a in kept]
                self.reconciled = True
            if pending:
                self._publish(pending)
                self._in_database(lambda: self._mark_published(pending), batch_id)
            for incident in sorted(incidents(new), key=lambda run: run[0]["window_start"]):
                print(format_alert_line(incident), flush=True)
        except JobError as exc:
            self.failure = exc
            raise

    def _record(self, rows: list[dict[str, Any]], batch_id: int) -> list[dict[str, Any]]:
        """Upsert the windows; the new ones (not in the table before) come back."""
        sa, table = self._sa, self.table
        if not rows:
            return []
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            known = {
                (address, as_utc(start))
                for address, start in conn.execute(
                    sa.select(table.c.address, table.c.window_start).where(
                        table.c.address.in_({r["address"] for r in rows})
                    )
                )
            }
            new = [r for r in rows if (r["address"], r["window_start"]) not in known]
            grown = [r for r in rows if (r["address"], r["window_start"]) in known]
            if new:
                conn.execute(
                    table.insert(),
                    [{**r, "detected_at": now, "published_at": None, "batch_id": batch_id}
                     for r in new],
                )  # fmt: skip
            for r in grown:
                counts = {c: r[c] for c in ("failed", "accounts", *TIME_COLUMNS[2:])}
                conn.execute(table.update().where(self._key(r)).values(**counts))
        return [{**r, "detected_at": now} for r in new]

    def _unpublished(self) -> list[dict[str, Any]]:
        table = self.table
        with self.engine.connect() as conn:
            found = conn.execute(
                self._sa.select(table).where(table.c.published_at.is_(None))
            ).mappings()
            return [
                {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
                for row in found
            ]

    def _not_on_topic(self, alerts: list[dict[str, Any]], batch_id: int) -> list[dict[str, Any]]:
        """Of ``alerts`` (unpublished by the table), those not on the topic; the others are
        marked published. Reads the topic from a minute before the oldest was detected
        (Kafka finds that offset by timestamp), which covers every record sent since."""
        since = min(a["detected_at"] for a in alerts) - timedelta(minutes=1)
        client = {f"kafka.{k}": v for k, v in self.options.kafka_properties().items()}
        found = (
            self.spark.read.format("kafka")
            .options(**client)
            .option("subscribe", self.topic)
            .option("startingTimestamp", str(int(since.timestamp() * 1000)))
            .option("startingOffsetsByTimestampStrategy", "latest")
            .load()
            .select(
                F.col("key").cast("string").alias("address"),
                F.get_json_object(F.col("value").cast("string"), "$.window_start").alias("at"),
            )
            .collect()
        )
        on_topic = {(r.address, r.at) for r in found}
        sent = [a for a in alerts if (a["address"], utc_text(a["window_start"])) in on_topic]
        if sent:
            self._in_database(lambda: self._mark_published(sent), batch_id)
        left = [a for a in alerts if a not in sent]
        print(
            f"Alerts left unpublished by an earlier run: {len(sent)} on {self.topic!r} "
            f"already (marked), {len(left)} to publish.",
            flush=True,
        )
        return left

    def _publish(self, alerts: list[dict[str, Any]]) -> None:
        """The alerts' records on the topic; returns once Kafka acknowledged all of them."""
        jvm = self.spark.sparkContext._jvm
        producer = self._producer()
        sent = [
            producer.send(
                jvm.org.apache.kafka.clients.producer.ProducerRecord(
                    self.topic, a["address"], json.dumps(alert_record(a))
                )
            )
            for a in alerts
        ]
        producer.flush()
        for future in sent:
            future.get()  # raises (through py4j) if Kafka refused or timed out on one

    def _producer(self) -> Any:
        """Kafka's Java producer on the driver (the connector's client, through py4j), made
        once: a Spark write job per batch of alerts would cost the latency a job's start.
        Idempotent, every replica acknowledging; a send is retried for as long as the job
        waits for Kafka (``--kafka-retry-timeout``)."""
        if self._kafka is None:
            string = "org.apache.kafka.common.serialization.StringSerializer"
            timeout_ms = self.options.kafka_retry_timeout_s * 1000
            props = client_properties(
                self.spark,
                self.options,
                {
                    "key.serializer": string,
                    "value.serializer": string,
                    "acks": "all",
                    "enable.idempotence": "true",
                    "linger.ms": "0",
                    "delivery.timeout.ms": str(timeout_ms),
                    "request.timeout.ms": str(max(timeout_ms // 3, 1000)),
                },
            )
            jvm = self.spark.sparkContext._jvm
            self._kafka = jvm.org.apache.kafka.clients.producer.KafkaProducer(props)
        return self._kafka

    def close(self) -> None:
        """Let the producer finish and let go of its connections."""
        if self._kafka is not None:
            self._kafka.close()
            self._kafka = None

    def _mark_published(self, alerts: list[dict[str, Any]]) -> None:
        now = datetime.now(timezone.utc)
        with self.engine.begin() as conn:
            for alert in alerts:
                conn.execute(self.table.update().where(self._key(alert)).values(published_at=now))

    def _key(self, alert: dict[str, Any]) -> Any:
        columns = self.table.c
        return (columns.address == alert["address"]) & (
            columns.window_start == alert["window_start"]
        )

    def _in_database(self, work: Any, batch_id: int) -> Any:
        """``work()``, retried while the database is away, as the counts' writes are."""
        where = masked(self.options.db_url or "")
        try:
            return call_with_retries(work, is_transient, self.backoff, lambda *_: None).value
        except RetriesExhaustedError as exc:
            raise JobError(
                f"the database at {where} was unavailable for {exc.elapsed_s:.0f} s while "
                f"recording the alerts of batch {batch_id} ({describe(exc.last)}); rerun "
                "the same command once it is back.",
                EXIT_DATABASE,
            ) from None
        except self._sa.exc.SQLAlchemyError as exc:
            raise JobError(
                f"the database at {where} refused the alerts of batch {batch_id} "
                f"({describe(exc)}); fix the database, then rerun the same command.",
                EXIT_DATABASE,
            ) from None
