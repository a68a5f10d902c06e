"""The credential-stuffing detector (``--alerts-topic``) on real Kafka and Spark.

Bursts are made here, event by event, not by the producer's generator; the expected
alerts are counted here (tests/support/truth.py) from the events sent. Each alert is read
back where a person or a program finds it: the console line, the ``login_alerts`` table
and the alerts topic.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from contract.alerts import ALERT_FIELDS, AlertRule
from contract.tables import ALERTS_TABLE, DEFAULT_DB_NAME
from producer.events import LoginEventGenerator
from tests.support.conditions import wait_for
from tests.support.events import login
from tests.support.jobs import RunningJob, run_job
from tests.support.kafka import produce_raw, read_topic
from tests.support.truth import as_failures, expected_alerts, to_epoch_ms

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RULE = AlertRule()  # the job's defaults
T = datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)  # on a 10 s boundary: a window start


def failed_login(n: int, moment: datetime, user: str, address: str, **extra) -> dict:
    return {**login(f"{address}-{n}", moment, user, success=False), "ip_address": address,
            **extra}  # fmt: skip


def window_starts(moment: datetime) -> list[datetime]:
    """The starts of the rule's windows that hold ``moment``."""
    slide = timedelta(seconds=RULE.slide_s)
    first = T + (moment - T) // slide * slide
    return [first - k * slide for k in range(RULE.window_s // RULE.slide_s)]


def encoded(events: list[dict]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]


def table_alerts(output_dir: Path) -> list[dict]:
    with sqlite3.connect(output_dir / DEFAULT_DB_NAME) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {ALERTS_TABLE}")]


def summary(rows: list[dict]) -> list[tuple[str, datetime, int, int]]:
    """Table rows as (address, window start, failed, accounts), like expected_alerts."""
    return sorted(
        (r["address"], datetime.fromisoformat(r["window_start"]).replace(tzinfo=timezone.utc),
         r["failed"], r["accounts"])
        for r in rows
    )  # fmt: skip


def published(bootstrap_servers: str, topic: str, at_least: int, timeout_s: float) -> list:
    """The alerts topic's records as (key, JSON object)."""
    records = read_topic(bootstrap_servers, topic, at_least, timeout_s=timeout_s)
    return [(r.key.decode(), json.loads(r.value)) for r in records]


def test_a_burst_alerts_once_for_its_window_and_ordinary_traffic_and_bad_input_never(
    kafka_broker, topic, tmp_path
):
    alerts_topic = f"{topic}-alerts"
    # An hour of ordinary traffic before the burst, at the producer's default failure rate.
    generator = LoginEventGenerator(seed=11, attack_probability=0)
    start = to_epoch_ms(T - timedelta(hours=1))
    ordinary = [json.loads(r.value) for r in generator.backfill(start, start + 3_600_000, 20_000)]
    # 15 failed logins against 15 accounts, 3.7 s apart from T + 0.5 s: all of them lie in
    # the window starting at T; the window 10 s earlier holds 14 and the one 10 s later 12.
    address = "203.0.113.77"
    burst = [failed_login(i, T + timedelta(seconds=0.5 + 3.7 * i), f"acct{i}", address)
             for i in range(15)]  # fmt: skip
    # As many failed logins from another address that the job rejects: never alerted on.
    bad = [failed_login(i, T + timedelta(seconds=i), f"acct{i}", "203.0.113.78", schema_version=99)
           for i in range(20)]  # fmt: skip
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded([*ordinary, *bad, *burst]))
    expected = expected_alerts(as_failures([*ordinary, *burst]), RULE)
    assert expected == [(address, T, 15, 15)]  # the ordinary hour crosses no window

    run = run_job(kafka_broker, topic, tmp_path, "--alerts-topic", alerts_topic)
    assert f"Created the alerts topic {alerts_topic!r}." in run.output
    assert run.rejected == {"unsupported_schema_version": 20}
    (line,) = [x for x in run.output.splitlines() if x.startswith("ALERT ")]
    assert line == (
        f"ALERT {address}: 15 failed logins against 15 accounts in 60 s "
        "(events 2024-05-01 12:30:00-12:30:52 UTC; 1 new window)"
    )
    rows = table_alerts(run.output_dir)
    assert summary(rows) == expected
    assert rows[0]["published_at"] is not None
    ((key, record),) = published(kafka_broker.bootstrap_servers, alerts_topic, 1, timeout_s=20)
    assert key == address and tuple(record) == ALERT_FIELDS
    assert record["window_start"] == "2024-05-01T12:30:00.000Z"
    assert record["window_end"] == "2024-05-01T12:31:00.000Z"
    assert (record["failed"], record["accounts"]) == (15, 15)
    assert record["first_event_time"] == "2024-05-01T12:30:00.500Z"
    assert record["last_event_time"] == "2024-05-01T12:30:52.300Z"

    # A replay of the whole topic into the same database (a new checkpoint) alerts nothing
    # again: the table is the ledger.
    again = run_job(kafka_broker, topic, tmp_path / "replay", "--alerts-topic", alerts_topic,
                    "--db-url", f"sqlite:///{run.output_dir / DEFAULT_DB_NAME}")  # fmt: skip
    assert not [x for x in again.output.splitlines() if x.startswith("ALERT ")]
    assert summary(table_alerts(run.output_dir)) == expected
    assert len(published(kafka_broker.bootstrap_servers, alerts_topic, 2, timeout_s=5)) == 1

    # Ten minutes later (event time) failed logins move the watermark past the burst's
    # window; a second burst stamped inside that window arrives after them: it is reported
    # as late rows, and raises no alert. Spark drops rows as late against the watermark of
    # the batch before, so the watermark moves in two batches (two runs) first.
    # The first of those runs also finds the alert unmarked, as a crash between Kafka's
    # acknowledgement and the mark leaves it: it is on the topic already, so only marked.
    with sqlite3.connect(run.output_dir / DEFAULT_DB_NAME) as conn:
        conn.execute(f"UPDATE {ALERTS_TABLE} SET published_at = NULL")
    for n in range(2):
        moved = failed_login(n, T + timedelta(minutes=10, seconds=n), "x", "198.51.100.1")
        produce_raw(kafka_broker.bootstrap_servers, topic, encoded([moved]))
        moving = run_job(kafka_broker, topic, tmp_path, "--alerts-topic", alerts_topic)
        if n == 0:
            assert (
                f"Alerts left unpublished by an earlier run: 1 on {alerts_topic!r} already "
                "(marked), 0 to publish." in moving.output
            )
    assert table_alerts(run.output_dir)[0]["published_at"] is not None
    assert len(published(kafka_broker.bootstrap_servers, alerts_topic, 2, timeout_s=5)) == 1
    late = [failed_login(i, T + timedelta(seconds=40 + i / 2), f"late{i}", "203.0.113.79")
            for i in range(20)]  # fmt: skip
    # On one partition: Spark counts late rows after a first aggregation per partition, one
    # per (address, window) they fall in: here the 6 windows that hold T + 40 s to T + 49.5 s.
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded(late), partition=0)
    windows = {start for t, _, _ in as_failures(late) for start in window_starts(t)}
    last = run_job(kafka_broker, topic, tmp_path, "--alerts-topic", alerts_topic)
    assert (
        f"[login_alerts] batch 3: late failed logins left out: {len(windows)} (address, "
        "window) rows older than the alert watermark" in last.output
    ), last.output[-3000:]
    assert not [x for x in last.output.splitlines() if x.startswith("ALERT ")]
    assert summary(table_alerts(run.output_dir)) == expected


def test_a_job_killed_mid_burst_gives_the_same_alerts_once(kafka_broker, topic, tmp_path):
    """kill -9 while a burst arrives; the rerun resumes. Bound: the alerts are the windows
    of all the burst's events, each once in the table and once on the topic."""
    alerts_topic = f"{topic}-alerts"
    address = "203.0.113.80"
    burst = [failed_login(i, T + timedelta(seconds=i / 2), f"acct{i}", address)
             for i in range(60)]  # fmt: skip
    expected = expected_alerts(as_failures(burst), RULE)
    args = ("--trigger", "1s", "--alerts-topic", alerts_topic)
    job = RunningJob(kafka_broker, topic, tmp_path, *args)
    try:
        wait_for(lambda: "Counting new records" in job.stdout, 120, "the job to start")
        produce_raw(kafka_broker.bootstrap_servers, topic, encoded(burst[:30]))
        first = published(kafka_broker.bootstrap_servers, alerts_topic, 1, timeout_s=60)
        assert first, "no alert on the topic within 60 s of the burst's first half"
    finally:
        job.kill_hard()
    produce_raw(kafka_broker.bootstrap_servers, topic, encoded(burst[30:]))
    rerun = RunningJob(kafka_broker, topic, tmp_path, *args)
    try:
        wait_for(
            lambda: (
                summary(table_alerts(tmp_path / "output")) == expected
                and all(r["published_at"] for r in table_alerts(tmp_path / "output"))
            ),
            120,
            "the rerun to record and publish the alerts of the whole burst",
        )
    finally:
        rerun.stop()
    records = published(kafka_broker.bootstrap_servers, alerts_topic, len(expected) + 1, 10)
    windows = Counter((key, r["window_start"]) for key, r in records)
    assert max(windows.values()) == 1, windows
    assert sorted(windows) == sorted(
        (a, start.isoformat(timespec="milliseconds").replace("+00:00", "Z"))
        for a, start, _, _ in expected
    )
