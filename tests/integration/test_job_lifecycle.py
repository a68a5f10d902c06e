"""The Spark job refuses bad situations with a clear message and a non-zero exit status,
never with a silently empty table.

One refusal per exit status runs end to end (here 3, Kafka, and 4, the checkpoint; 2, a usage
error, in tests/unit/test_command_lines.py; 1 in test_checkpoint_guards.py); the other messages
of each kind are checked in-process on their real texts (tests/unit/test_job_guards_and_output.py)
rather than with a spark-submit each.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.support.conditions import wait_for
from tests.support.jobs import RunningJob, run_job
from tests.support.kafka import create_topic, free_port, produce_raw

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
    # Batch 0 was committed with its table (test_pipeline.py shows a rerun resumes from there).
    assert (tmp_path / "checkpoint" / "monthly" / "commits" / "0").exists()
    assert job.monthly() == {"2024-01": (1, 1, 0)}


def test_checkpoint_of_another_topic_or_setting_is_refused(kafka_broker, topic, tmp_path):
    produce_raw(kafka_broker.bootstrap_servers, topic, [EVENT])
    assert run_job(kafka_broker, topic, tmp_path).monthly == {"2024-01": (1, 1, 0)}
    create_topic(kafka_broker.bootstrap_servers, f"{topic}-other", partitions=1)
    other = run_job(kafka_broker, f"{topic}-other", tmp_path, check=False)
    assert other.result.returncode == 4
    assert "belongs to another query" in other.output
    assert "topic" in other.output
