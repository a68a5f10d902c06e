"""The job keeps its state in RocksDB with changelog checkpointing, and a checkpoint made
with Spark's default store goes on with that store and counts right."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from consumer.options import QUERY_CHECKPOINT
from tests.support.events import encoded, login
from tests.support.jobs import run_job
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
    checkpointing, ``delta`` for Spark's default store)."""
    state = work_dir / "checkpoint" / QUERY_CHECKPOINT / "state"
    return {path.suffix.lstrip(".") for path in state.rglob("*.*") if path.suffix}


def produce(broker, topic: str, batch: list[dict]) -> None:
    produce_raw(broker.bootstrap_servers, topic, encoded(batch))


def test_a_new_checkpoint_keeps_its_state_in_rocksdb_changelogs(kafka_broker, topic, tmp_path):
    sent = events(0, 40)
    produce(kafka_broker, topic, sent + sent[:5])  # five repeated ids, dropped by the state
    run = run_job(kafka_broker, topic, tmp_path)
    assert run.monthly == expected_monthly(sent)
    assert "changelog" in state_files(tmp_path)
    assert "delta" not in state_files(tmp_path)


def test_a_checkpoint_of_the_default_store_goes_on_with_it(kafka_broker, topic, tmp_path):
    first = events(100, 30)
    produce(kafka_broker, topic, first)
    old = {"SPARK_SUBMIT_EXTRA": f"--conf {HDFS_STORE}"}
    assert run_job(kafka_broker, topic, tmp_path, env=old).monthly == expected_monthly(first)
    assert "delta" in state_files(tmp_path)

    second = events(130, 20)
    produce(kafka_broker, topic, second + first[:3])  # repeats of ids in the old state
    again = run_job(kafka_broker, topic, tmp_path)  # today's default asks for RocksDB
    assert again.monthly == expected_monthly(first + second)
    assert "changelog" not in state_files(tmp_path)
