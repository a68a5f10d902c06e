"""``python -m producer`` against the real local broker: delivery accounting and lifecycle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest
from kafka import KafkaAdminClient

from tests.support.kafka import create_topic, free_port, read_topic

pytestmark = [pytest.mark.integration]


def producer_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "producer", "--progress", "none", *args]


def run(bootstrap: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    return subprocess.run(
        producer_command(*args),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_backfill_creates_the_topic_and_every_record_is_keyed_by_user(kafka_broker, tmp_path):
    topic = f"created-{tmp_path.name[-8:]}".replace("_", "-")
    summary = tmp_path / "summary.json"
    result = run(
        kafka_broker.bootstrap_servers,
        "--topic",
        topic,
        "--partitions",
        "5",
        "--start",
        "2025-01-01",
        "--end",
        "2025-03-31",
        "--count",
        "3000",
        "--summary-json",
        str(summary),
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"Sent 3,000 login events to topic '{topic}' at {kafka_broker.bootstrap_servers}: "
        "3,000 acknowledged, 0 failed"
    ) in result.stdout
    stats = json.loads(summary.read_text())
    assert (stats["sent"], stats["acknowledged"], stats["failed"]) == (3000, 3000, 0)

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    partitions = admin.describe_topics([topic])[0]["partitions"]
    admin.close()
    assert len(partitions) == 5
    records = read_topic(kafka_broker.bootstrap_servers, topic, 3000)
    assert len(records) == 3000
    assert all(r.key == json.loads(r.value)["user_id"].encode() for r in records)
    assert stats["bytes_acknowledged"] == sum(len(r.value) for r in records)
    # One user's events all land in one partition (ordering per user is preserved).
    partitions_per_user: dict[bytes, set[int]] = {}
    for r in records:
        partitions_per_user.setdefault(r.key, set()).add(r.partition)
    assert all(len(p) == 1 for p in partitions_per_user.values())


def test_unreachable_broker_fails_within_the_timeout_with_advice():
    started = time.monotonic()
    result = run(f"localhost:{free_port()}", "--connect-timeout", "3s", "--count", "5")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert "did not answer within 3s" in result.stderr
    assert "make local-up" in result.stderr
    assert elapsed < 15  # 3 s of retries plus interpreter start, not kafka-python's 30 s default
    assert "ECONNREFUSED" not in result.stderr  # retries are quiet; one clear message


def test_invalid_flag_is_a_usage_error():
    result = run("localhost:9", "--rate", "-5")
    assert result.returncode == 2
    assert "--rate: '-5' must be greater than 0" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_flushes_and_every_acknowledged_event_is_on_the_topic(kafka_broker, topic, signum):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    process = subprocess.Popen(
        producer_command("--topic", topic, "--rate", "400"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Wait (with a deadline) until events really arrive, then stop mid-stream.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not read_topic(
            kafka_broker.bootstrap_servers, topic, 1, timeout_s=1
        ):
            pass
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert stdout.startswith(f"Stopped by {signal.Signals(signum).name}.")
    assert "Traceback" not in stderr
    acknowledged = int(stdout.split(" acknowledged")[0].rsplit(" ", 1)[-1].replace(",", ""))
    assert acknowledged > 0
    records = read_topic(kafka_broker.bootstrap_servers, topic, acknowledged + 1, timeout_s=5)
    assert len(records) == acknowledged
    assert len({json.loads(r.value)["event_id"] for r in records}) == acknowledged


def test_in_a_pipe_progress_is_a_periodic_log_line(kafka_broker, topic):
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_broker.bootstrap_servers}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "producer",
            "--topic",
            topic,
            "--rate",
            "200",
            "--duration",
            "3s",
            "--progress-interval",
            "0.5s",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if " acknowledged, " in line]
    assert len(lines) >= 3
    assert all("INFO producer: " in line and "events/s" in line for line in lines)


def test_follow_continues_the_backfill_with_live_events(kafka_broker, topic, tmp_path):
    summary = tmp_path / "summary.json"
    started = datetime.now(timezone.utc)
    result = run(
        kafka_broker.bootstrap_servers,
        "--topic", topic, "--start", "2024-01-01", "--end", "2024-01-31", "--count", "200",
        "--follow", "--rate", "100", "--duration", "2s", "--summary-json", str(summary),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    acknowledged = json.loads(summary.read_text())["acknowledged"]
    stamps = [
        datetime.fromisoformat(json.loads(r.value)["timestamp"].replace("Z", "+00:00"))
        for r in read_topic(kafka_broker.bootstrap_servers, topic, acknowledged)
    ]
    assert len(stamps) == acknowledged
    backfill = [s for s in stamps if s.year == 2024 and s.month == 1]
    live = [s for s in stamps if s >= started]
    assert len(backfill) == 200  # exactly --count in the range
    assert len(live) == acknowledged - 200 > 0  # then live events, stamped with the time


def test_refused_deliveries_are_counted_and_exit_1(kafka_broker, tmp_path):
    """A topic whose broker refuses the batches (too large): failures, not silence."""
    topic = f"tiny-{tmp_path.name[-8:]}".replace("_", "-")
    create_topic(kafka_broker.bootstrap_servers, topic, configs={"max.message.bytes": "200"})
    summary = tmp_path / "summary.json"
    result = run(
        kafka_broker.bootstrap_servers,
        "--topic", topic, "--months", "1", "--count", "50", "--summary-json", str(summary),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    stats = json.loads(summary.read_text())
    assert (stats["sent"], stats["acknowledged"], stats["failed"]) == (50, 0, 50)
    assert "0 acknowledged, 50 failed" in result.stdout
    assert "Errors: MessageSizeTooLargeError x50." in result.stdout
    assert "Traceback" not in result.stderr
    assert result.stderr.count("delivery failed:") == 1  # one line per kind, all counted
    assert read_topic(kafka_broker.bootstrap_servers, topic, 1, timeout_s=3) == []


def test_the_confluent_client_delivers_the_same_accounting(kafka_broker, topic, tmp_path):
    summary = tmp_path / "summary.json"
    result = run(
        kafka_broker.bootstrap_servers,
        "--topic", topic, "--client", "confluent", "--start", "2025-01-01", "--end",
        "2025-02-28", "--count", "2000", "--seed", "7", "--summary-json", str(summary),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "2,000 acknowledged, 0 failed" in result.stdout
    records = read_topic(kafka_broker.bootstrap_servers, topic, 2000)
    assert len(records) == 2000
    assert all(r.key == json.loads(r.value)["user_id"].encode() for r in records)
    assert json.loads(summary.read_text())["bytes_acknowledged"] == sum(
        len(r.value) for r in records
    )
    # The same seed gives the same events whichever client sends them.
    again = tmp_path / "again.json"
    other = f"{topic}-kp"
    result = run(
        kafka_broker.bootstrap_servers,
        "--topic", other, "--start", "2025-01-01", "--end", "2025-02-28", "--count", "2000",
        "--seed", "7", "--summary-json", str(again),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ids = {json.loads(r.value)["event_id"] for r in records}
    assert ids == {
        json.loads(r.value)["event_id"]
        for r in read_topic(kafka_broker.bootstrap_servers, other, 2000)
    }
