"""Nothing lost, nothing double-counted: bad input, crashes and restarts on real Kafka and Spark.

Each test compares the job's final table with the truth computed independently from what
is really on the topic, and records its figures for docs/RELIABILITY.md.
"""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support.conditions import wait_for
from tests.support.database import read_job_database
from tests.support.jobs import JobRun, RunningJob, run_job, start_producer
from tests.support.kafka import produce_with_metadata, read_topic
from tests.support.reliability import record_reliability
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def login(event_id: str, timestamp: str, success: bool = True, **extra: object) -> dict:
    return {
        "event_id": event_id,
        "user_id": f"user-{event_id}",
        "timestamp": timestamp,
        "browser_info": "Chrome",
        "success": success,
        "schema_version": 1,
        **extra,
    }


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def bad_records(now: datetime) -> dict[str, list[bytes | None]]:
    """At least one of each kind of bad input the issue names, by expected reason."""
    in_two_days = iso(now + timedelta(days=2))
    return {
        "not_json_object": [
            b"this is not json",
            b"[1, 2, 3]",
            b'[{"event_id": "x", "timestamp": "2024-01-01T00:00:00Z"}]',
        ],
        "empty_value": [b"", None],
        "missing_timestamp": [
            json.dumps({"event_id": "nt", "user_id": "u", "success": True}).encode()
        ],
        "invalid_timestamp": [
            json.dumps(login("it1", "31/01/2024 10:00")).encode(),
            json.dumps(login("it2", "2024-02-30T00:00:00.000Z")).encode(),
        ],
        "future_timestamp": [json.dumps(login("ft", in_two_days)).encode()],
        "wrong_type": [json.dumps(login("wt", "2024-01-05T00:00:00.000Z", success="yes")).encode()],
        "oversized": [
            json.dumps(login("big", "2024-01-05T00:00:00.000Z", padding="x" * 1_000_000)).encode()
        ],
        "invalid_utf8": [b'{"event_id": "\xff\xfe", "timestamp": "2024-01-05T00:00:00Z"}'],
    }


def test_bad_input_is_quarantined_with_reason_and_coordinates_and_never_counted(
    kafka_broker, topic, tmp_path
):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    good = [
        login(f"g{i}", ts, i % 5 != 0)
        for i, ts in enumerate(
            ["2024-01-31T23:59:59.999Z", "2024-02-01T00:00:00.000Z", "2024-02-29T12:00:00.000Z"]
            * 10
        )
    ]
    repeated = good[0]  # sent a second time: the same event must count once
    bad = bad_records(now)
    values = [json.dumps(e).encode() for e in good]
    values += [v for vs in bad.values() for v in vs] + [json.dumps(repeated).encode()]
    placed = produce_with_metadata(kafka_broker.bootstrap_servers, topic, values)
    expected_reasons = {reason: len(vs) for reason, vs in bad.items()}
    bad_at = dict(
        zip(
            placed[len(good) : len(good) + sum(expected_reasons.values())],
            [(r, v) for r, vs in bad.items() for v in vs],
            strict=True,
        )
    )

    job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "2s")
    try:
        wait_for(
            lambda: job.monthly() == expected_monthly(good),
            180,
            f"the first table\n{job.stderr_path.read_text()[-3000:]}",
        )
        assert job.alive(), "the job must keep running after bad input"
        # A second wave after the bad records is still counted: the job did not stall.
        wave = [login(f"w{i}", "2024-03-15T08:00:00.000Z") for i in range(7)]
        produce_with_metadata(
            kafka_broker.bootstrap_servers,
            topic,
            [json.dumps(e).encode() for e in wave] + [b"{oops"],
        )
        wait_for(lambda: job.monthly() == expected_monthly(good + wave), 120, "the second wave")
        assert job.alive()
    finally:
        job.stop()
    rejected = JobRun(subprocess.CompletedProcess([], 0), job.output_dir).rejected
    expected_reasons["not_json_object"] += 1
    assert rejected == expected_reasons
    total_bad = sum(expected_reasons.values())
    assert f"Rejected records: {total_bad} (" in job.stdout
    assert "1 repeated event ids dropped" in job.stdout

    quarantined = [
        json.loads(line)
        for path in (job.output_dir / "rejected").glob("batch=*/*.json")
        for line in path.read_text().splitlines()
    ]
    assert len(quarantined) == total_bad
    by_coordinates = {(q["partition"], q["offset"]): q for q in quarantined}
    for (partition, offset), (reason, value) in bad_at.items():
        record = by_coordinates[(partition, offset)]
        assert record["reason"] == reason
        assert record["topic"] == topic
        assert base64.b64decode(record.get("value_base64") or "") == (value or b"")
    truth, counted = expected_monthly(good + wave), job.monthly() or {}
    short = {
        m: truth.get(m, (0,))[0] - counted.get(m, (0,))[0] for m in truth.keys() | counted.keys()
    }
    record_reliability(
        "bad_input",
        fault="Bad records on the topic (non-JSON, empty, array, no timestamp, unparseable "
        "and future timestamps, wrong types, 1 MB value, invalid UTF-8) and a repeated "
        "event_id",
        injection=f"{total_bad} bad records and 1 repeat from a plain kafka-python producer, "
        "in two waves, while the job runs with a 2 s trigger",
        times=1,
        events=len(good) + len(wave),
        # Per month, so a loss in one month cannot hide a double count in another; a bad
        # record missing from the quarantine is lost, one quarantined twice is doubled.
        lost=sum(n for n in short.values() if n > 0) + max(total_bad - len(by_coordinates), 0),
        double_counted=sum(-n for n in short.values() if n < 0)
        + (len(quarantined) - len(by_coordinates)),
        note=f"all {total_bad} quarantined with reason, partition and offset; job kept running",
    )


def test_killing_the_job_repeatedly_loses_and_duplicates_nothing(kafka_broker, topic, tmp_path):
    """kill -9 the running job at random moments while events keep arriving, then resume."""
    seed = int(os.environ.get("RELIABILITY_SEED", random.randrange(1_000_000)))
    rng = random.Random(seed)
    producer = start_producer(
        kafka_broker.bootstrap_servers,
        topic,
        "--rate",
        "400",
        "--duration",
        "900s",  # until stopped below: every restart finds new events to batch
        "--seed",
        str(seed),
        "--summary-json",
        str(tmp_path / "p.json"),
    )
    kills = []
    try:
        for attempt in range(3):
            job = RunningJob(kafka_broker, topic, tmp_path, "--trigger", "2s")
            started = time.monotonic()
            if attempt > 0:  # the first kill may hit start-up; the others must hit batches
                wait_for(
                    lambda job=job: "[monthly_logins] batch" in job.stdout or not job.alive(),
                    180,
                    f"a batch of restart {attempt} (RELIABILITY_SEED={seed})",
                )
            delay = rng.uniform(0, 8) if attempt else rng.uniform(8, 24)
            time.sleep(delay)  # the fault's timing is the point here, not a readiness wait
            assert job.alive(), f"RELIABILITY_SEED={seed}: " + job.stderr_path.read_text()[-3000:]
            job.kill_hard()
            kills.append(
                f"{time.monotonic() - started:.1f} s "
                f"({job.stdout.count('[monthly_logins] batch')} batches done)"
            )
        producer.send_signal(signal.SIGTERM)  # it flushes and reports what was acknowledged
        _, stderr = producer.communicate(timeout=180)
    finally:
        if producer.poll() is None:
            producer.kill()
    assert producer.returncode == 0, stderr
    acknowledged = json.loads((tmp_path / "p.json").read_text())["acknowledged"]

    final = run_job(kafka_broker, topic, tmp_path)  # same checkpoint: resume and drain
    events = [
        json.loads(r.value) for r in read_topic(kafka_broker.bootstrap_servers, topic, acknowledged)
    ]
    assert len(events) == acknowledged
    truth = expected_monthly(events)
    counted = final.monthly
    total_truth = sum(v[0] for v in truth.values())
    total_counted = sum(v[0] for v in counted.values())
    # The database written in the same batches (SQLite in the output folder, by default),
    # read with sqlite3: its table, and one progress row per batch whose offset ranges add
    # up to exactly what the topic holds, however often a batch was replayed.
    database = read_job_database(final.output_dir / "logins.db")
    in_db = {r["period"]: (r["logins"], r["successful"], r["failed"]) for r in database["counts"]}
    progress = database["progress"]
    read_by_batches = sum(r["records_read"] for r in progress)
    last_offsets = json.loads(progress[-1]["end_offsets"]) if progress else {}
    # Per month, so a loss in one month cannot hide a double count in another; a month
    # short in the CSV or the database is lost, a month over in either is double-counted.
    months = truth.keys() | counted.keys() | in_db.keys()
    short = {
        m: max(truth.get(m, (0,))[0] - t.get(m, (0,))[0] for t in (counted, in_db)) for m in months
    }
    over = {
        m: max(t.get(m, (0,))[0] - truth.get(m, (0,))[0] for t in (counted, in_db)) for m in months
    }
    record_reliability(
        "consumer_crash",
        fault="Spark job killed (kill -9 of spark-submit, JVM and Python driver) mid-stream",
        injection=f"3 kills, at {', '.join(kills)} after each start, while the producer "
        f"sent 400 events/s; restarted with the same checkpoint (seed {seed})",
        times=len(kills),
        events=total_truth,
        lost=sum(n for n in short.values() if n > 0),
        double_counted=sum(n for n in over.values() if n > 0),
        note="final CSV table and database table compared month by month with the records "
        f"on the topic; the database's {len(progress)} batch rows read "
        f"{read_by_batches:,} records in all",
    )
    replay = f"kills at {', '.join(kills)}; replay with RELIABILITY_SEED={seed}"
    assert counted == truth, replay
    assert total_counted == acknowledged, replay
    assert in_db == truth, replay
    assert [r["batch_id"] for r in progress] == list(range(len(progress))), replay
    assert read_by_batches == acknowledged, replay
    assert sum(n for parts in last_offsets.values() for n in parts.values()) == acknowledged
    assert [r["repeats_dropped"] for r in progress] == [0] * len(progress), replay
    assert progress[-1]["total_logins"] == acknowledged, replay


def test_broker_restarts_while_producing_keep_exactly_the_acknowledged_events(
    restartable_broker, tmp_path
):
    broker = restartable_broker
    summary = tmp_path / "summary.json"
    producer = start_producer(
        broker.bootstrap_servers,
        "restarts",
        "--rate",
        "2000",
        "--duration",
        "40s",
        "--summary-json",
        str(summary),
    )
    try:
        wait_for(
            lambda: read_topic(broker.bootstrap_servers, "restarts", 1, timeout_s=1),
            60,
            "the first events",
        )
        broker.stop()  # clean shutdown mid-stream
        time.sleep(3)  # the outage: events keep being generated and buffered
        broker.start()
        time.sleep(8)  # let production resume before the next fault
        broker.kill()  # power-cut: SIGKILL
        time.sleep(3)
        broker.start()
        stdout, stderr = producer.communicate(timeout=240)
    finally:
        if producer.poll() is None:
            producer.kill()
    stats = json.loads(summary.read_text())
    records = read_topic(
        broker.bootstrap_servers, "restarts", stats["acknowledged"] + 1, timeout_s=20
    )
    event_ids = [json.loads(r.value)["event_id"] for r in records]
    duplicates = len(event_ids) - len(set(event_ids))
    record_reliability(
        "broker_restart",
        fault="Kafka broker stopped while the producer sends (clean stop, then kill -9)",
        injection="2 restarts 3 s long during a 40 s run at 2,000 events/s (acks=all, "
        "idempotent producer)",
        times=2,
        events=stats["sent"],
        lost=max(stats["acknowledged"] - len(set(event_ids)), 0),
        double_counted=duplicates,
        note=f"sent {stats['sent']:,}, acknowledged {stats['acknowledged']:,}, failed "
        f"{stats['failed']}, on the topic {len(event_ids):,}",
    )
    assert producer.returncode == 0, stderr[-3000:]
    assert stats["failed"] == 0 and stats["sent"] == stats["acknowledged"]
    assert len(event_ids) == stats["acknowledged"]
    assert duplicates == 0
    assert f"{stats['acknowledged']:,} acknowledged, 0 failed" in stdout


def test_sigterm_during_a_backfill_loses_no_acknowledged_event(kafka_broker, topic, tmp_path):
    summary = tmp_path / "summary.json"
    producer = start_producer(
        kafka_broker.bootstrap_servers,
        topic,
        "--months",
        "6",
        "--count",
        "2000000",
        "--summary-json",
        str(summary),
    )
    wait_for(
        lambda: read_topic(kafka_broker.bootstrap_servers, topic, 1, timeout_s=1),
        60,
        "the first events",
    )
    producer.send_signal(signal.SIGTERM)
    stdout, _ = producer.communicate(timeout=120)
    stats = json.loads(summary.read_text())
    records = read_topic(
        kafka_broker.bootstrap_servers, topic, stats["acknowledged"] + 1, timeout_s=10
    )
    record_reliability(
        "producer_sigterm",
        fault="Producer stopped by SIGTERM in the middle of a backfill",
        injection="SIGTERM once the first events are on the topic (2,000,000 requested)",
        times=1,
        events=stats["acknowledged"],
        lost=max(stats["acknowledged"] - len(records), 0),
        double_counted=max(len(records) - stats["acknowledged"], 0),
        note=f"stopped after {stats['sent']:,} sent; exit status {producer.returncode}",
    )
    assert producer.returncode == 0
    assert stdout.startswith("Stopped by SIGTERM.")
    assert 0 < stats["acknowledged"] == stats["sent"] < 2_000_000
    assert len(records) == stats["acknowledged"]
