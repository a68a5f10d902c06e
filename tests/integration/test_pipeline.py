"""Producer -> real Kafka -> real Spark (via consumer/submit.sh), checked against an
independent count of what is on the topic."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from contract.tables import PERIODS
from tests.support.jobs import run_job
from tests.support.kafka import create_topic, produce_raw, read_topic
from tests.support.truth import expected_counts, expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Instants on both sides of month boundaries, a leap day and New Year.
BOUNDARY_TIMESTAMPS = [
    "2023-12-31T23:59:59.999Z",
    "2024-01-01T00:00:00.000Z",
    "2024-01-31T23:59:59.999Z",
    "2024-02-01T00:00:00.000Z",
    "2024-02-29T00:00:00.000Z",
    "2024-02-29T23:59:59.999Z",
    "2024-03-01T00:00:00.000Z",
    "2024-03-31T23:59:59.999Z",
    "2024-04-01T00:00:00.001Z",
]
BACKFILL = ["--start", "2023-11-15", "--end", "2024-04-15", "--count", "4000", "--seed", "7"]


def boundary_events() -> list[bytes]:
    return [
        json.dumps(
            {
                "event_id": f"boundary-{i}",
                "user_id": f"user{i}",
                "timestamp": ts,
                "browser_info": "Firefox",
                "success": i % 3 != 0,
                "schema_version": 1,
            }
        ).encode()
        for i, ts in enumerate(BOUNDARY_TIMESTAMPS)
    ]


def run_producer(bootstrap: str, topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LOGINS_TOPIC": topic}
    return subprocess.run(
        [sys.executable, "-m", "producer", "--progress", "none", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def fill_topic(broker, tmp_path_factory) -> tuple[str, list[dict]]:
    """A topic with boundary events and a seeded backfill, and the events really on it."""
    name = "pipeline-" + tmp_path_factory.mktemp("t").name.replace("_", "-")
    create_topic(broker.bootstrap_servers, name)
    produce_raw(broker.bootstrap_servers, name, boundary_events())
    result = run_producer(broker.bootstrap_servers, name, *BACKFILL)
    assert result.returncode == 0, result.stderr
    assert "4,000 acknowledged, 0 failed" in result.stdout
    records = read_topic(broker.bootstrap_servers, name, 4000 + len(BOUNDARY_TIMESTAMPS))
    assert len(records) == 4000 + len(BOUNDARY_TIMESTAMPS)
    return name, [json.loads(r.value) for r in records]


@pytest.fixture(scope="module")
def filled_topic(kafka_broker, tmp_path_factory) -> tuple[str, list[dict]]:
    return fill_topic(kafka_broker, tmp_path_factory)


def test_the_same_seed_replays_the_same_events_and_another_seed_does_not(
    kafka_broker, filled_topic
):
    """Checked on what the CLI put on the topics, not against the generator's own output."""
    name, on_topic = filled_topic
    first = sorted(
        (e for e in on_topic if not e["event_id"].startswith("boundary")),
        key=lambda e: e["event_id"],
    )
    assert len(first) == 4000
    assert all("2023-11-15" <= e["timestamp"] < "2024-04-16" for e in first)

    def published(topic: str, seed: str) -> list[dict]:
        args = [*BACKFILL[:-1], seed]
        assert run_producer(kafka_broker.bootstrap_servers, topic, *args).returncode == 0
        records = read_topic(kafka_broker.bootstrap_servers, topic, 4000)
        return sorted((json.loads(r.value) for r in records), key=lambda e: e["event_id"])

    assert published(f"{name}-again", "7") == first  # every field, event ids included
    other = published(f"{name}-seed8", "8")
    assert len(other) == 4000
    assert not {e["event_id"] for e in other} & {e["event_id"] for e in first}


@pytest.mark.parametrize("versions", ["local", "newest"])
def test_monthly_counts_equal_an_independent_count(versions, request, tmp_path_factory, tmp_path):
    """On the local path's Kafka and Spark (the Bitnami family's), and on the official
    images' newer ones: the producer against that broker, the job on that Spark."""
    if versions == "local":
        broker, job_env, spark_version = request.getfixturevalue("kafka_broker"), {}, None
        topic, events = request.getfixturevalue("filled_topic")
    else:
        newest = request.getfixturevalue("newest")
        broker, job_env = newest.broker, newest.versions.job_env
        spark_version = newest.versions.spark_version
        topic, events = fill_topic(broker, tmp_path_factory)
    run = run_job(broker, topic, tmp_path, env=job_env)
    if spark_version:
        assert f"spark-submit: Spark {spark_version} (Scala" in run.result.stderr
    expected = expected_monthly(events)
    assert run.monthly == expected
    # The boundary events make an off-by-one month visible: both sides are populated.
    assert {"2023-12", "2024-01", "2024-02", "2024-03", "2024-04"} <= set(run.monthly)
    assert sum(v[0] for v in run.monthly.values()) == len(events)
    assert run.rejected == {}
    # The console shows the table, its total and the per-batch line.
    assert f"|total  | {len(events):>5}|" in run.result.stdout
    assert f"batch 0: {len(events):,} records read, 0 rejected" in run.result.stdout


def test_a_rerun_with_the_same_checkpoint_counts_only_new_events(kafka_broker, topic, tmp_path):
    """Also a fresh output folder's files: the table, and the rejected reasons beside it."""
    first = [json.loads(v) for v in boundary_events()[:4]]
    produce_raw(kafka_broker.bootstrap_servers, topic, [b"garbage", *boundary_events()[:4]])
    run = run_job(kafka_broker, topic, tmp_path)
    assert run.monthly == expected_monthly(first)
    assert run.rejected == {"not_json_object": 1}
    assert "Rejected records: 1 (not_json_object 1)" in run.result.stdout

    again = run_job(kafka_broker, topic, tmp_path)
    assert "No new records" in again.result.stdout
    assert again.monthly == expected_monthly(first)

    produce_raw(kafka_broker.bootstrap_servers, topic, boundary_events()[4:])
    final = run_job(kafka_broker, topic, tmp_path)
    assert final.monthly == expected_monthly(json.loads(v) for v in boundary_events())


def test_daily_counts_in_another_zone_equal_an_independent_count(
    kafka_broker, filled_topic, tmp_path
):
    """--period and --timezone end to end, once: every period in every zone is checked
    in-process (tests/transforms/test_period_bucketing.py), weeks end to end by test_demo."""
    topic, events = filled_topic
    zone = "America/New_York"
    run = run_job(kafka_broker, topic, tmp_path, "--period", "day", "--timezone", zone)
    assert run.counts("day") == expected_counts(events, zone, "day")
    assert run.counts("day") != expected_counts(events, "UTC", "day")
    assert f"logins per {PERIODS['day'].title} ({zone})" in run.result.stdout
