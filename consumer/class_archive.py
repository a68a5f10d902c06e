"""The run that teaches the JVM which classes the job loads, for class data sharing (CDS).

Most of the job's start-up is the JVM finding, reading and verifying Spark's classes one
by one. ``consumer/submit.sh`` runs this file once, with ``-XX:ArchiveClassesAtExit``:
at exit the JVM writes every class it loaded into an archive, and later starts map that
archive (``-XX:SharedArchiveFile``) instead of loading them again. docs/PERFORMANCE.md
has what it saves.

So that the archive holds what the job needs, this is the job itself: the same session
settings and the same query (parse, classify, drop repeats, count, the sink), on a few
events read from files instead of Kafka. Kafka's own classes come from the connector's
jars (``--jars``), which the archive does not cover either way. Nothing here touches
Kafka, the user's checkpoints or their database.

    spark-submit ... consumer/class_archive.py WORK_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention

from consumer.job import build_spark, counting_query
from consumer.options import parse_options


def sample_events() -> list[str]:
    """A few valid events (an invalid one would make the sink re-read Kafka for it)."""
    return [
        json.dumps(
            {
                "event_id": f"00000000-0000-4000-8000-{n:012d}",
                "user_id": f"user-{n}",
                "timestamp": f"2026-0{n % 9 + 1}-01T12:00:00Z",
                "success": n % 3 != 0,
                "schema_version": 1,
            }
        )
        for n in range(12)
    ]


def records_from_files(spark: SparkSession, folder: Path) -> DataFrame:
    """A stream shaped like the Kafka source's records (after ``read_kafka``'s rename)."""
    return spark.readStream.text(str(folder)).select(
        F.lit(None).cast("binary").alias("key"),
        F.col("value").cast("binary").alias("value"),
        F.lit("class-archive").alias("topic"),
        F.lit(0).alias("partition"),
        F.lit(0).cast("long").alias("offset"),
        F.current_timestamp().alias("kafka_timestamp"),
    )


def main(work_dir: str) -> None:
    work = Path(work_dir)
    events = work / "events"
    events.mkdir(parents=True, exist_ok=True)
    (events / "events.json").write_text("\n".join(sample_events()) + "\n")
    options = parse_options(
        [
            "--trigger",
            "available-now",
            "--checkpoint-dir",
            str(work / "checkpoint"),
            "--output-dir",
            str(work / "output"),
            "--db-url",
            "off",
        ],
        {},
    )
    spark = build_spark(options)
    try:
        writer, _ = counting_query(spark, options, records_from_files(spark, events))
        writer.start().awaitTermination()
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
