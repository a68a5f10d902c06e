"""The detector's stateless pre-filter as a query of its own, for ``python -m bench.realtime``:
the records that can be failed logins, classified as the job does, the failed logins kept
and written to a Kafka topic keyed by address. Run by spark-submit of a Spark that has
real-time mode (4.2 or later), once with ``--mode realtime`` and once with ``--mode
microbatch`` (a 1 s trigger), on the same master; it stops after ``--seconds``.

Only the pre-filter: real-time mode takes stateless queries with a Kafka sink, not the
detector's windowed aggregation or its ``foreachBatch`` ledger (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention

from consumer.alerts import failed_login_candidates, failed_logins
from consumer.transform import classify_records

# How often a real-time query checkpoints its progress (Spark's own default is 5 minutes;
# its records flow between checkpoints).
REALTIME_CHECKPOINT_INTERVAL = "10 seconds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--output-topic", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--mode", choices=("realtime", "microbatch"), required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args()

    spark = (
        SparkSession.builder.appName(f"prefilter-{args.mode}")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    records = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap_servers)
        .option("subscribe", args.topic)
        .option("startingOffsets", "earliest")  # the topic is new: all the producer sent
        .load()
        .withColumnRenamed("timestamp", "kafka_timestamp")
    )
    candidates = failed_login_candidates(records)
    failed = failed_logins(classify_records(candidates, for_filtering=True))
    out = failed.select(
        F.col("address").alias("key"),
        F.to_json(
            F.struct("address", "event_id", F.unix_millis("event_time").alias("event_ms"))
        ).alias("value"),
    )
    writer = (
        out.writeStream.format("kafka")
        .option("kafka.bootstrap.servers", args.bootstrap_servers)
        .option("topic", args.output_topic)
        .option("kafka.linger.ms", "0")
        .option("checkpointLocation", args.checkpoint)
        .outputMode("update")
    )
    if args.mode == "realtime":
        writer = writer.trigger(realTime=REALTIME_CHECKPOINT_INTERVAL)
    else:
        writer = writer.trigger(processingTime="1 second")
    query = writer.start()
    print("started", flush=True)
    deadline = time.monotonic() + args.seconds
    while query.isActive and time.monotonic() < deadline:
        query.awaitTermination(1)
    failure = query.exception()
    query.stop()
    if failure is not None:
        raise SystemExit(f"the {args.mode} query failed: {failure}")


if __name__ == "__main__":
    main()
