"""The reference for the drain figure: a Spark job of the kind public tutorials ship.

It parses three fields, groups by ``yyyy-MM`` of the event time and counts, in complete
mode to the console sink: no validation, no deduplication, no quarantine, no tuning.
It is benchmark-only (never part of the product); ``bench/run.py`` runs it with
``spark-submit --jars`` on the same topic as the project's job, in the same run.

    spark-submit --jars ... bench/minimal_job.py BOOTSTRAP TOPIC CHECKPOINT_DIR
"""

from __future__ import annotations

import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F  # noqa: N812 - Spark's own documented convention
from pyspark.sql import types as T  # noqa: N812

SCHEMA = T.StructType(
    [
        T.StructField("user_id", T.StringType()),
        T.StructField("timestamp", T.StringType()),
        T.StructField("browser_info", T.StringType()),
    ]
)


def main(bootstrap_servers: str, topic: str, checkpoint_dir: str) -> None:
    spark = SparkSession.builder.appName("minimal_monthly_logins").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    records = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .load()
    )
    events = records.select(F.from_json(F.col("value").cast("string"), SCHEMA).alias("e"))
    counts = events.groupBy(
        F.date_format(F.to_timestamp("e.timestamp"), "yyyy-MM").alias("month")
    ).count()
    query = (
        counts.writeStream.outputMode("complete")
        .format("console")
        .option("numRows", 1000)
        .option("checkpointLocation", checkpoint_dir)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])
