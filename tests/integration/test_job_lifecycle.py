"""The Spark job refuses bad situations with a clear message and a non-zero exit status,
never with a silently empty table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.support.conditions import wait_for
from tests.support.jobs import RunningJob, run_job
from tests.support.kafka import free_port, produce_raw

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EVENT = json.dumps(
    {"event_id": "a", "user_id": "u", "timestamp": "2024-01-01T10:00:00.000Z", "success": True}
).encode()


class Unreachable:
    bootstrap_servers = f"localhost:{free_port()}"


def test_unreachable_broker(tmp_path):
    started = time.monotonic()
    run = run_job(Unreachable(), "logins", tmp_path, "--connect-timeout", "5", check=False)
    assert run.result.returncode == 3
    assert "did not answer within 5s" in run.output
    assert time.monotonic() - started < 90
    assert not (tmp_path / "output" / "monthly_logins.csv").exists()


class Unresolvable:
    bootstrap_servers = "no-such-host.invalid:9092"  # .invalid never resolves (RFC 6761)


def test_unresolvable_broker_name(tmp_path):
    run = run_job(Unresolvable(), "logins", tmp_path, "--connect-timeout", "5", check=False)
    assert run.result.returncode == 3
    assert "error: no address of Kafka at no-such-host.invalid:9092 resolves" in run.output
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    ("how", "signum"),
    [("Ctrl-C to the group", signal.SIGINT), ("SIGTERM to submit.sh", signal.SIGTERM)],
)
def test_a_live_job_stops_cleanly_and_says_where(kafka_broker, topic, tmp_path, how, signum):
    produce_raw(kafka_broker.bootstrap_servers, topic, [EVENT])
    job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "1s")
    wait_for(lambda: "batch 0:" in job.stdout or not job.alive(), 180, "the first batch")
    if signum == signal.SIGINT:  # what a terminal does on Ctrl-C: the whole foreground group
        os.killpg(job.process.pid, signal.SIGINT)
    else:
        job.process.send_signal(signal.SIGTERM)
    assert job.process.wait(timeout=60) == 0, job.stdout + job.stderr_path.read_text()
    output = job.stdout + job.stderr_path.read_text()
    assert "Stopped after batch 0. Progress is in the checkpoint" in output
    assert "Traceback" not in output and "Py4J" not in output
    driver = subprocess.run(["pgrep", "-f", str(tmp_path / "checkpoint")], capture_output=True)
    assert driver.stdout == b"", "a JVM or Python driver of the job is still running"
    # The rerun resumes: nothing new, nothing counted twice.
    assert run_job(kafka_broker, topic, tmp_path).monthly == {"2024-01": (1, 1, 0)}


def test_missing_topic(kafka_broker, tmp_path):
    run = run_job(kafka_broker, "no-such-topic", tmp_path, check=False)
    assert run.result.returncode == 3
    assert "topic 'no-such-topic' does not exist" in run.output
    assert "Batch" not in run.result.stdout


def test_checkpoint_of_another_topic_or_setting_is_refused(kafka_broker, topic, tmp_path):
    produce_raw(kafka_broker.bootstrap_servers, topic, [EVENT])
    assert run_job(kafka_broker, topic, tmp_path).monthly == {"2024-01": (1, 1, 0)}
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    admin.create_topics({f"{topic}-other": {"num_partitions": 1}}, wait_for_metadata=True)
    admin.close()
    other = run_job(kafka_broker, f"{topic}-other", tmp_path, check=False)
    assert other.result.returncode == 4
    assert "belongs to another query" in other.output
    assert "topic" in other.output
    changed = run_job(kafka_broker, topic, tmp_path, "--dedupe-window", "0", check=False)
    assert changed.result.returncode == 4
    assert "deduplication True (now False)" in changed.output


def test_checkpoint_written_by_a_different_query_is_refused(kafka_broker, topic, tmp_path):
    foreign = tmp_path / "checkpoint"
    (foreign / "offsets").mkdir(parents=True)
    (foreign / "metadata").write_text('{"id":"0d8c2f5e-0000-0000-0000-000000000000"}\n')
    run = run_job(kafka_broker, topic, tmp_path, check=False)
    assert run.result.returncode == 4
    assert "was not written by this job" in run.output
