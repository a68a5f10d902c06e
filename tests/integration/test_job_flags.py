"""The job's flags that change what it counts or where it writes, each observed on a real run.

Several flags share one job run where they cannot interfere, because every spark-submit
costs seconds of JVM start.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.conditions import wait_for
from tests.support.events import encoded, login
from tests.support.jobs import RunningJob, run_job
from tests.support.kafka import produce_raw
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def event(n: int, moment: datetime, success: bool = True) -> dict:
    return login(f"flag-{n}", moment, f"u{n % 3}", success)


def test_max_future_cap_quarantine_dir_and_a_rerun_with_nothing_new(kafka_broker, topic, tmp_path):
    past = [event(i, datetime(2024, 3, 1 + i, tzinfo=timezone.utc), i % 4 != 0) for i in range(12)]
    # Two hours ahead of its Kafka timestamp: rejected under --max-future 3600, not by default.
    ahead = event(99, datetime.now(timezone.utc) + timedelta(hours=2))
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded([*past, ahead]))
    quarantine = tmp_path / "elsewhere"
    run = run_job(
        kafka_broker, topic, tmp_path,
        "--max-future", "3600", "--max-offsets-per-trigger", "5",
        "--quarantine-dir", str(quarantine),
    )  # fmt: skip
    assert run.monthly == expected_monthly(past)
    assert run.rejected == {"future_timestamp": 1}
    (record,) = [json.loads(f.read_text()) for f in quarantine.glob("batch=*/*.json")]
    assert record["reason"] == "future_timestamp" and record["topic"] == topic
    assert not (tmp_path / "output" / "rejected").exists()
    # At most 5 records per batch: 13 records take at least 3 batches.
    read = [int(n) for n in _batch_sizes(run.result.stdout)]
    assert sum(read) == 13 and max(read) <= 5 and len(read) >= 3, read

    # Nothing new: the rerun says so and shows the table the last run left.
    again = run_job(kafka_broker, topic, tmp_path, "--max-future", "3600")
    assert f"No new records on '{topic}' since the last run" in again.result.stdout
    assert f"Latest table ({tmp_path / 'output' / 'monthly_logins.csv'}):" in again.result.stdout
    assert "|2024-03|    12|         9|     3|" in again.result.stdout

    # The same checkpoint with another time zone would mix two kinds of months: refused.
    other_zone = run_job(kafka_broker, topic, tmp_path, "--timezone", "Asia/Tokyo", check=False)
    assert other_zone.result.returncode == 4
    assert "timezone 'UTC' (now 'Asia/Tokyo')" in other_zone.output

    # The default --max-future (one day) counts the event two hours ahead.
    default = run_job(kafka_broker, topic, tmp_path / "default")
    assert default.monthly == expected_monthly([*past, ahead])
    assert default.rejected == {}


def _batch_sizes(output: str) -> list[str]:
    import re

    return [n.replace(",", "") for n in re.findall(r"\] batch \d+: ([\d,]+) records read", output)]


def test_starting_offsets_latest_counts_only_what_arrives_after_the_start(
    kafka_broker, topic, tmp_path
):
    before = [event(i, datetime(2024, 5, 10, tzinfo=timezone.utc)) for i in range(7)]
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded(before))
    job = RunningJob(
        kafka_broker, topic, tmp_path, "--starting-offsets", "latest", "--trigger", "1s"
    )
    try:
        # The source records its starting offsets in the checkpoint on its first trigger.
        initial = tmp_path / "checkpoint" / "monthly" / "sources" / "0" / "0"
        wait_for(lambda: initial.exists() or not job.alive(), 180, "the starting offsets")
        assert job.alive(), job.stderr_path.read_text()[-3000:]
        after = [event(100 + i, datetime(2024, 6, 1, tzinfo=timezone.utc)) for i in range(4)]
        produce_raw(kafka_broker.bootstrap_servers, topic, encoded(after))
        wait_for(lambda: job.monthly() == expected_monthly(after), 120, "the 4 new events")
        time.sleep(2)  # two more triggers: nothing else may appear (the point, not readiness)
        assert job.monthly() == expected_monthly(after)
    finally:
        job.stop()
