"""Where the state goes: a drain of a small backlog keeps it in memory, a live run in RocksDB
with changelog checkpointing; a checkpoint keeps its store whatever runs it later, and
counts right across stores and triggers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumer.options import QUERY_CHECKPOINT
from tests.support.conditions import wait_for
from tests.support.events import encoded, login
from tests.support.jobs import RunningJob, run_job
from tests.support.kafka import produce_raw
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HDFS_STORE = (
    "spark.sql.streaming.stateStore.providerClass="
    "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"
)


def events(first: int, count: int) -> list[dict]:
    return [
        login(
            f"state-{n}",
            datetime(2025, n % 12 + 1, n % 9 + 1, 8, tzinfo=timezone.utc),
            f"user{n % 7}",
            n % 4 != 0,
        )
        for n in range(first, first + count)
    ]


def state_files(work_dir: Path) -> set[str]:
    """The kinds of file the state store wrote (``changelog`` for RocksDB's changelog
    checkpointing, ``zip`` for its snapshots, ``delta`` for Spark's default store)."""
    state = work_dir / "checkpoint" / QUERY_CHECKPOINT / "state"
    return {path.suffix.lstrip(".") for path in state.rglob("*.*") if path.suffix}


def produce(broker, topic: str, batch: list[dict]) -> None:
    produce_raw(broker.bootstrap_servers, topic, encoded(batch))


def recorded_store(work_dir: Path) -> str:
    return json.loads((work_dir / "checkpoint" / "pipeline.json").read_text())["state_store"]


def test_a_drain_of_a_small_backlog_keeps_its_ids_in_memory(kafka_broker, topic, tmp_path):
    sent = events(0, 40)
    produce(kafka_broker, topic, sent + sent[:5])  # five repeated ids, dropped by the state
    run = run_job(kafka_broker, topic, tmp_path)
    assert run.monthly == expected_monthly(sent)
    assert "5 repeated event ids dropped" in run.output
    assert "delta" in state_files(tmp_path)
    assert not {"changelog", "zip"} & state_files(tmp_path)
    assert recorded_store(tmp_path) == "memory"

    # The checkpoint keeps its store; asking for another one is refused, not ignored.
    again = run_job(kafka_broker, topic, tmp_path, "--state-store", "rocksdb", check=False)
    assert again.result.returncode == 4
    assert "keeps its state in memory" in again.output
    assert "--state-store rocksdb needs a new --checkpoint-dir" in again.output


def test_a_live_checkpoint_keeps_rocksdb_when_a_drain_goes_on_with_it(
    kafka_broker, topic, tmp_path
):
    first = events(200, 30)
    produce(kafka_broker, topic, first + first[:4])
    job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "1s")
    try:
        wait_for(lambda: job.monthly() == expected_monthly(first) or not job.alive(), 240,
                 "the live job's count of the first events")  # fmt: skip
    finally:
        job.stop()
    assert job.monthly() == expected_monthly(first), job.stdout
    assert "changelog" in state_files(tmp_path)
    assert recorded_store(tmp_path) == "rocksdb"

    second = events(230, 20)
    produce(kafka_broker, topic, second + first[:3] + second[:2])  # repeats of both runs
    drained = run_job(kafka_broker, topic, tmp_path)  # a drain goes on with RocksDB
    assert drained.monthly == expected_monthly(first + second)
    assert "5 repeated event ids dropped" in drained.output
    assert "delta" not in state_files(tmp_path)


def test_a_checkpoint_of_the_default_store_goes_on_with_it(kafka_broker, topic, tmp_path):
    first = events(100, 30)
    produce(kafka_broker, topic, first)
    old = {"SPARK_SUBMIT_EXTRA": f"--conf {HDFS_STORE}"}  # how it was chosen before the flag
    assert run_job(kafka_broker, topic, tmp_path, env=old).monthly == expected_monthly(first)
    assert "delta" in state_files(tmp_path)

    second = events(130, 20)
    produce(kafka_broker, topic, second + first[:3])  # repeats of ids in the old state
    job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "1s")  # live asks for RocksDB
    try:
        wait_for(lambda: job.monthly() == expected_monthly(first + second) or not job.alive(),
                 240, "the live job's count")  # fmt: skip
    finally:
        job.stop()
    assert job.monthly() == expected_monthly(first + second), job.stdout
    assert not {"changelog", "zip"} & state_files(tmp_path)
    # A live run on a state kept in memory says so, and what to do for a long one.
    assert "State: in memory (Spark's default store, on the JVM heap)" in job.stdout
