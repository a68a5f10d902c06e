"""The repeated-event_id policy on the streaming branch the job runs (not the batch one).

``drop_repeated_events`` on a stream keys the state by processing time with a watermark of
``window``: a repeat within the window is dropped, a repeat after it is counted again, and
rejected records (keyed by their Kafka coordinates) are never merged. Each step below is one
micro-batch of a file source resumed from the same checkpoint, as the job resumes.
"""

from __future__ import annotations

import json
import time

from consumer.transform import drop_repeated_events

WINDOW_S = 2


def test_repeats_within_the_window_are_dropped_and_after_it_counted_again(spark, tmp_path):
    from pyspark.sql import types as T  # noqa: N812

    source = tmp_path / "source"
    source.mkdir()
    schema = T.StructType(
        [
            T.StructField("event_id", T.StringType()),
            T.StructField("rejected_reason", T.StringType()),
            T.StructField("partition", T.IntegerType()),
            T.StructField("offset", T.LongType()),
        ]
    )
    step = iter(range(1000))
    kept: list[list[str]] = []

    def batch(*records: dict) -> list[str]:
        """Add one file, run the query until it is processed, return what came through."""
        n = next(step)
        (source / f"{n:04d}.json").write_text("".join(json.dumps(r) + "\n" for r in records))
        stream = spark.readStream.schema(schema).json(str(source))
        assert stream.isStreaming
        seen: list[str] = []
        query = (
            drop_repeated_events(stream, f"{WINDOW_S} seconds")
            .writeStream.foreachBatch(
                lambda df, _: seen.extend(
                    r["event_id"] or f"{r['partition']}:{r['offset']}" for r in df.collect()
                )
            )
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(availableNow=True)
            .start()
        )
        query.awaitTermination(120)
        kept.append(sorted(seen))
        return sorted(seen)

    def valid(event_id: str) -> dict:
        return {"event_id": event_id, "rejected_reason": None, "partition": 0, "offset": 0}

    def rejected(partition: int, offset: int) -> dict:
        return {"event_id": None, "rejected_reason": "wrong_type", "partition": partition,
                "offset": offset}  # fmt: skip

    assert batch(valid("a"), valid("b"), valid("a")) == ["a", "b"]  # a repeat in one batch
    assert batch(valid("a"), rejected(1, 7), rejected(1, 8)) == ["1:7", "1:8"]
    assert batch(rejected(1, 7)) == []  # the same Kafka record again: a replay, dropped
    time.sleep(2.5 * WINDOW_S)  # processing time must pass the window: the point of the test
    assert batch(valid("c")) == ["c"]  # advances the watermark past a's first sighting
    assert batch(valid("d")) == ["d"]
    assert batch(valid("a"), valid("b")) == ["a", "b"], kept  # after the window: counted again
