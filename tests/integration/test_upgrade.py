"""Upgrade drill: the job's checkpoint and database, written on the local path's Spark (the
Bitnami family's, .venv), resumed by the job on the official images' newer Spark
(.venv-newest) with more events.

What happens is what "Upgrading Spark" in docs/USAGE.md says: the newer Spark resumes the old
checkpoint (RocksDB state with changelog checkpointing) and counts every event once; the
ids in the old state still drop their repeats. The counts are compared with the topic read
back independently; the database with the same counts. Should a later Spark refuse the old
state, this test fails with the job's own one-line error, and docs/USAGE.md must change with it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone

import pytest

from consumer.options import QUERY_CHECKPOINT
from contract.tables import DEFAULT_DB_NAME
from services.settings import load_settings
from tests.support.events import encoded, login
from tests.support.jobs import run_job
from tests.support.kafka import produce_raw, read_topic
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def events(first: int, count: int) -> list[dict]:
    return [
        login(
            f"upgrade-{n}",
            datetime(2025, n % 12 + 1, n % 27 + 1, n % 24, tzinfo=timezone.utc),
            f"user{n % 11}",
            n % 5 != 0,
        )
        for n in range(first, first + count)
    ]


def counted_once(bootstrap: str, topic: str, records: int) -> dict[str, tuple[int, int, int]]:
    """The months of every event id on the topic, each id counted once (the job's policy
    for repeats), read back with a plain consumer: not from anything the job wrote."""
    on_topic = read_topic(bootstrap, topic, records)
    assert len(on_topic) == records
    unique: dict[str, dict] = {}
    for record in on_topic:
        event = json.loads(record.value)
        unique.setdefault(event["event_id"], event)
    return expected_monthly(unique.values())


def database_months(path) -> dict[str, tuple[int, int, int]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT period, logins, successful, failed FROM login_counts "
            "WHERE period_kind = 'month'"
        ).fetchall()
    return {period: (logins, ok, failed) for period, logins, ok, failed in rows}


def test_the_newest_spark_resumes_the_oldest_sparks_checkpoint_and_counts_exactly(
    kafka_broker, newest, topic, tmp_path
):
    oldest = load_settings().spark_version
    first = events(0, 300)
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded(first + first[:20]))
    # RocksDB, as a live job's checkpoint keeps it (a drain this small keeps its ids in memory).
    before = run_job(kafka_broker, topic, tmp_path, "--state-store", "rocksdb")
    assert f"spark-submit: Spark {oldest} (Scala" in before.result.stderr
    assert before.monthly == counted_once(kafka_broker.bootstrap_servers, topic, 320)
    assert "batch 0: 320 records read, 0 rejected, 20 repeated event ids dropped" in (
        before.result.stdout
    )
    state = tmp_path / "checkpoint" / QUERY_CHECKPOINT / "state"
    assert any(state.rglob("*.changelog")), "the old checkpoint keeps RocksDB changelogs"

    # More events, and repeats of ids that only the old checkpoint's state knows.
    second = events(300, 200)
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded(second + first[100:130]))
    after = run_job(kafka_broker, topic, tmp_path, env=newest.versions.job_env, check=False)
    output = after.output
    assert after.result.returncode == 0, (
        f"Spark {newest.versions.spark_version} did not resume a checkpoint of Spark {oldest}; "
        f"'Upgrading Spark' in docs/USAGE.md must say what to do. The job said:\n{output[-3000:]}"
    )
    assert f"spark-submit: Spark {newest.versions.spark_version} (Scala" in after.result.stderr
    expected = counted_once(kafka_broker.bootstrap_servers, topic, 550)
    assert sum(logins for logins, _, _ in expected.values()) == 500
    assert after.monthly == expected
    # Only the new records were read, and the old state dropped the 30 repeats.
    assert "batch 1: 230 records read, 0 rejected, 30 repeated event ids dropped" in output
    assert "Traceback" not in output
    assert database_months(after.output_dir / DEFAULT_DB_NAME) == expected
