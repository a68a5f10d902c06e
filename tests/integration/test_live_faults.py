"""Faults while the job runs: the broker paused, killed, or gone for longer than the job
waits; PostgreSQL stopped; SQLite locked by another process or made read-only.

A live job (2 s trigger) counts while the producer sends. Each fault is injected for real
(SIGSTOP, kill -9, ``pg_ctl stop``, an exclusive transaction in another process, a read-only
remount) and the final tables are compared with the truth computed from the records read
back from the topic. Each scenario records what it observed for docs/RELIABILITY.md before
its assertions, whatever the outcome.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from contract.tables import COUNTS_TABLE
from services.kafka import LocalKafka
from tests.support.conditions import wait_for
from tests.support.database import read_job_database
from tests.support.faults import SqliteLock, read_only_capable
from tests.support.jobs import JobRun, RunningJob, run_job, start_producer
from tests.support.kafka import create_topic, read_topic
from tests.support.postgres import LocalPostgres
from tests.support.reliability import record_reliability
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]

RATE = 300  # events/s from the producer while faults are injected
# The producer runs until the test stops it with SIGTERM (it then flushes and reports what
# Kafka acknowledged), so events keep arriving during every fault, however slow the machine.
UNTIL_STOPPED = "900s"
JOB_PASSWORD = "live-faults-pw"
BATCH_LINE = "[monthly_logins] batch "


def batches(job: RunningJob) -> int:
    return job.stdout.count(BATCH_LINE)


def next_batch(job: RunningJob, seen: int, timeout_s: float, what: str) -> float:
    """Wait for a batch after the first ``seen``; the moment it was reported."""
    wait_for(
        lambda: batches(job) > seen or not job.alive(),
        timeout_s,
        f"a batch after {what}\n{job.stdout[-2000:]}{job.stderr_path.read_text()[-3000:]}",
    )
    assert job.alive(), job.stdout[-3000:] + job.stderr_path.read_text()[-3000:]
    return time.monotonic()


def gaps(truth: dict, *tables: dict) -> tuple[int, int]:
    """Logins lost and double-counted, month by month, over several copies of the table
    (a month short in any copy is lost, a month over in any is double-counted)."""
    months = set(truth).union(*tables)
    lost = sum(max(truth.get(m, (0,))[0] - t.get(m, (0,))[0] for t in tables) for m in months)
    over = sum(max(t.get(m, (0,))[0] - truth.get(m, (0,))[0] for t in tables) for m in months)
    return max(lost, 0), max(over, 0)


def truth_of(broker: LocalKafka, topic: str, acknowledged: int) -> dict:
    records = read_topic(broker.bootstrap_servers, topic, acknowledged + 1, timeout_s=10)
    assert len(records) == acknowledged, (len(records), acknowledged)
    return expected_monthly(json.loads(r.value) for r in records)


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("error:")]


def stack_traces(output: str) -> list[str]:
    """Lines that belong to a stack trace (Java's ``\tat ...`` or Python's ``Traceback``)."""
    return [
        line
        for line in output.splitlines()
        if line.startswith("\tat ") or line.startswith("Traceback") or "Py4J" in line
    ]


@pytest.fixture
def postgres() -> Iterator[LocalPostgres]:
    server = LocalPostgres()
    server.start()
    server.execute(
        f"CREATE ROLE job LOGIN PASSWORD '{JOB_PASSWORD}'", "CREATE DATABASE logins OWNER job"
    )
    yield server
    server.stop()


def postgres_counts(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(f"SELECT period, logins, successful, failed FROM {COUNTS_TABLE}")
            )
            return {r.period: (r.logins, r.successful, r.failed) for r in rows}
    finally:
        engine.dispose()


def test_broker_paused_and_killed_and_postgres_stopped_while_the_job_runs(
    restartable_broker, postgres, tmp_path
):
    """The job rides out a paused and a killed broker and a stopped PostgreSQL, counting
    exactly; a broker gone for longer than --kafka-retry-timeout ends it with one line
    (exit 3), and the rerun is exact."""
    broker, topic = restartable_broker, "live"
    create_topic(broker.bootstrap_servers, topic)
    db_url = postgres.url("job", JOB_PASSWORD, "logins")
    summary = tmp_path / "producer.json"
    producer = start_producer(
        broker.bootstrap_servers, topic, "--rate", str(RATE), "--duration", UNTIL_STOPPED,
        "--summary-json", str(summary),
    )  # fmt: skip
    # The database password travels in the environment, never on a command line.
    job = RunningJob(broker, topic, tmp_path, "--trigger", "2s", env={"CONSUMER_DB_URL": db_url})
    observed: dict[str, float] = {}
    try:
        next_batch(job, 0, 240, "the start")
        pid = broker.pid()
        assert pid is not None
        # 1. The broker paused (SIGSTOP): connections stay open, nothing answers.
        seen = batches(job)
        os.kill(pid, signal.SIGSTOP)
        time.sleep(8)  # the outage itself: its length is the point, not a readiness wait
        os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        observed["pause_recovery"] = next_batch(job, seen, 120, "SIGCONT") - resumed
        # 2. The broker killed (kill -9), restarted 8 s later on the same data.
        seen = batches(job)
        killed = time.monotonic()
        broker.kill()
        time.sleep(8)  # the outage itself
        broker.start()  # returns once the broker answers
        back = time.monotonic()
        observed["kill_outage"] = back - killed
        observed["kill_recovery"] = next_batch(job, seen, 120, "the broker's restart") - back
        # 3. PostgreSQL stopped for 20 s (pg_ctl stop -m fast), then started again.
        seen = batches(job)
        postgres.halt()
        halted = time.monotonic()
        try:
            wait_for(lambda: "unavailable" in job.stdout, 60, "a failed database write")
            time.sleep(max(0.0, 20 - (time.monotonic() - halted)))  # the outage itself
        finally:
            postgres.resume()
        observed["pg_outage"] = time.monotonic() - halted
        up = time.monotonic()
        observed["pg_recovery"] = next_batch(job, seen, 120, "PostgreSQL's restart") - up
        producer.send_signal(signal.SIGTERM)
        _, stderr = producer.communicate(timeout=240)
        acknowledged = json.loads(summary.read_text())["acknowledged"]
        wait_for(
            lambda: (
                sum(v[0] for v in (job.monthly() or {}).values()) >= acknowledged or not job.alive()
            ),
            180,
            f"the job to catch up with {acknowledged:,} events",
        )
        live_csv = job.monthly() or {}
    finally:
        if producer.poll() is None:
            producer.kill()
        job.stop()
    output = job.stdout + job.stderr_path.read_text()
    truth = truth_of(broker, topic, acknowledged)
    in_db = postgres_counts(db_url)
    lost, doubled = gaps(truth, live_csv, in_db)
    retried = re.search(r"Database at .* available again after ([\d.]+) s", output)
    common = dict(times=1, events=acknowledged, lost=lost, double_counted=doubled)
    counted = (
        f"{acknowledged:,} acknowledged, {sum(v[0] for v in live_csv.values()):,} in the CSV, "
        f"{sum(v[0] for v in in_db.values()):,} in PostgreSQL"
    )
    record_reliability(
        "live_broker_paused",
        fault="Kafka broker paused (SIGSTOP) while the job runs",
        injection=f"SIGSTOP for 8 s, then SIGCONT, during a live job (2 s trigger) while the "
        f"producer sent {RATE} events/s",
        note=f"job kept running; next batch {observed['pause_recovery']:.1f} s after SIGCONT; "
        f"{counted}; bound: --kafka-retry-timeout 60 s",
        **common,
    )
    record_reliability(
        "live_broker_killed",
        fault="Kafka broker killed (kill -9) while the job runs, restarted on the same data",
        injection="kill -9, restart 8 s later (broker answering again "
        f"{observed['kill_outage']:.0f} s after the kill), same live job and producer",
        note=f"job kept running; next batch {observed['kill_recovery']:.1f} s after the broker "
        f"was back; {counted}; bound: --kafka-retry-timeout 60 s",
        **common,
    )
    record_reliability(
        "live_postgres_stopped",
        fault="PostgreSQL stopped while the job writes to it, started again",
        injection=f"pg_ctl stop -m fast, start {observed['pg_outage']:.0f} s later, same live "
        "job and producer",
        note=f"the batch's write was retried and succeeded after "
        f"{retried.group(1) if retried else '?'} s; next batch {observed['pg_recovery']:.1f} s "
        f"after the restart; {counted}; bound: --db-retry-timeout 60 s",
        **common,
    )
    assert producer.returncode == 0, stderr[-3000:]
    assert live_csv == truth and in_db == truth
    assert retried is not None, output[-3000:]
    assert stack_traces(output) == [] and error_lines(output) == []
    assert JOB_PASSWORD not in output

    # 4. The broker gone for longer than the bound: one line, exit 3, and a rerun is exact.
    bound = 20
    job = RunningJob(broker, topic, tmp_path, "--trigger", "2s", "--kafka-retry-timeout",
                     str(bound), env={"CONSUMER_DB_URL": db_url})  # fmt: skip
    try:
        wait_for(lambda: "Counting new records" in job.stdout or not job.alive(), 240, "the start")
        time.sleep(4)  # two triggers: the query is planning batches when the broker goes
        killed = time.monotonic()
        broker.kill()
        wait_for(lambda: not job.alive(), 6 * bound, "the job to give up on Kafka")
        gave_up = time.monotonic() - killed
    finally:
        job.stop()
    output = job.stdout + job.stderr_path.read_text()
    broker.start()
    rerun = run_job(broker, topic, tmp_path, check=False, env={"CONSUMER_DB_URL": db_url})
    counted_again = rerun.monthly if rerun.result.returncode == 0 else {}
    lost, doubled = gaps(truth, counted_again, postgres_counts(db_url))
    errors = error_lines(output)
    record_reliability(
        "live_broker_gone",
        fault="Kafka broker gone for longer than the job waits",
        injection=f"kill -9 of the broker under a live job started with --kafka-retry-timeout "
        f"{bound}; broker started again after the job ended, then the job rerun",
        times=1,
        events=acknowledged,
        lost=lost,
        double_counted=doubled,
        note=f"job ended {gave_up:.0f} s after the kill with exit {job.process.returncode} and "
        f"{len(errors)} error line, {len(stack_traces(output))} stack-trace lines; the rerun "
        f"(exit {rerun.result.returncode}) counted {sum(v[0] for v in counted_again.values()):,}",
    )
    assert job.process.returncode == 3, output[-3000:]
    assert (
        len(errors) == 1 and f"Kafka at {broker.bootstrap_servers} stopped answering" in errors[0]
    )
    assert stack_traces(output) == [], output[-3000:]
    assert bound <= gave_up <= 4 * bound + 30, gave_up
    assert rerun.result.returncode == 0, rerun.output[-3000:]
    assert counted_again == truth and lost == doubled == 0


def same_batch(output_dir: Path, db_path: Path) -> bool:
    """The CSV and the database hold the same table (so the same batch)."""
    csv = JobRun(subprocess.CompletedProcess([], 0), output_dir).monthly
    rows = read_job_database(db_path)["counts"]
    return csv == {r["period"]: (r["logins"], r["successful"], r["failed"]) for r in rows}


def test_sqlite_locked_and_read_only_while_the_job_runs(kafka_broker, topic, tmp_path):
    """Another process holds SQLite's write lock for 20 s, then the database's folder turns
    read-only for 10 s: the job retries each batch's transaction and counts exactly. A lock
    held past --db-retry-timeout stops it with one line (exit 3) with the CSV and the
    database at the same batch, and the rerun is exact."""
    bound = 30
    db_dir = tmp_path / "db"
    db_path = db_dir / "logins.db"
    summary = tmp_path / "producer.json"
    with read_only_capable(db_dir) as folder:
        producer = start_producer(
            kafka_broker.bootstrap_servers, topic, "--rate", str(RATE), "--duration", UNTIL_STOPPED,
            "--summary-json", str(summary),
        )  # fmt: skip
        job = RunningJob(
            kafka_broker, topic, tmp_path, "--trigger", "2s", "--db-url", f"sqlite:///{db_path}",
            "--db-retry-timeout", str(bound),
        )  # fmt: skip
        observed: dict[str, float] = {}
        lock = None
        try:
            next_batch(job, 0, 240, "the start")
            # 1. Locked by another process for 20 s.
            seen = batches(job)
            lock = SqliteLock(db_path, 20)
            observed["lock"] = lock.wait(60)
            released = time.monotonic()
            observed["lock_recovery"] = next_batch(job, seen, 120, "the release") - released
            wait_for(lambda: job.stdout.count("available again") >= 1, 60, "the retried write")
            # 2. The folder remounted read-only for 10 s.
            seen = batches(job)
            folder.make_read_only()
            read_only_at = time.monotonic()
            wait_for(lambda: job.stdout.count("unavailable (") >= 2, 60, "a write refused")
            time.sleep(max(0.0, 10 - (time.monotonic() - read_only_at)))  # the fault itself
            folder.make_writable()
            observed["read_only"] = time.monotonic() - read_only_at
            next_batch(job, seen, 120, "the remount")
            wait_for(lambda: job.stdout.count("available again") >= 2, 60, "the second retry")
            # 3. Locked for longer than the bound: the job stops.
            lock = SqliteLock(db_path, bound + 25)
            locked_at = time.monotonic()
            wait_for(lambda: not job.alive(), bound + 60, "the job to give up on the database")
            observed["gave_up"] = time.monotonic() - locked_at
            lock.wait(bound + 60)
            agree = same_batch(job.output_dir, db_path)
            producer.send_signal(signal.SIGTERM)
            _, stderr = producer.communicate(timeout=240)
        finally:
            if lock is not None:
                lock.kill()
            if producer.poll() is None:
                producer.kill()
            job.stop()
    output = job.stdout + job.stderr_path.read_text()
    acknowledged = json.loads(summary.read_text())["acknowledged"]
    truth = truth_of(kafka_broker, topic, acknowledged)
    rerun = run_job(kafka_broker, topic, tmp_path, "--db-url", f"sqlite:///{db_path}", check=False)
    counted = rerun.monthly if rerun.result.returncode == 0 else {}
    rows = read_job_database(db_path)["counts"]
    in_db = {r["period"]: (r["logins"], r["successful"], r["failed"]) for r in rows}
    lost, doubled = gaps(truth, counted, in_db)
    retries = re.findall(r"available again after ([\d.]+) s", output)
    errors = error_lines(output)
    common = dict(times=1, events=acknowledged, lost=lost, double_counted=doubled)
    record_reliability(
        "live_sqlite_locked",
        fault="SQLite database locked by another process while the job writes",
        injection=f"another process holds BEGIN EXCLUSIVE for {observed['lock']:.0f} s during a "
        f"live job (2 s trigger, producer at {RATE} events/s)",
        note=f"write retried, succeeded after {retries[0] if retries else '?'} s; next batch "
        f"{observed['lock_recovery']:.1f} s after the release; job kept running; bound: "
        f"--db-retry-timeout ({bound} s here, 60 s by default)",
        **common,
    )
    record_reliability(
        "live_sqlite_read_only",
        fault="SQLite database's folder remounted read-only while the job writes",
        injection=f"mount -o remount,bind,ro for {observed['read_only']:.0f} s, then rw, same "
        "live job",
        note=f"write retried, succeeded after {retries[1] if len(retries) > 1 else '?'} s; "
        "job kept running",
        **common,
    )
    record_reliability(
        "live_sqlite_locked_too_long",
        fault="SQLite database locked for longer than the job retries",
        injection=f"another process holds BEGIN EXCLUSIVE for {bound + 25} s under "
        f"--db-retry-timeout {bound}; the job rerun afterwards",
        note=f"job ended {observed['gave_up']:.0f} s after the lock with exit "
        f"{job.process.returncode}, {len(errors)} error line, {len(stack_traces(output))} "
        f"stack-trace lines; CSV and database {'at the same' if agree else 'at DIFFERENT'} "
        f"batch; the rerun counted {sum(v[0] for v in counted.values()):,} of "
        f"{acknowledged:,} acknowledged",
        **common,
    )
    assert producer.returncode == 0, stderr[-3000:]
    assert len(retries) == 2, output[-3000:]
    assert job.process.returncode == 3, output[-3000:]
    assert len(errors) == 1 and "was unavailable for" in errors[0], errors
    assert f"--db-retry-timeout {bound}" in errors[0] and "database is locked" in errors[0]
    assert stack_traces(output) == [], output[-3000:]
    assert bound <= observed["gave_up"] <= bound + 45
    assert agree
    assert rerun.result.returncode == 0, rerun.output[-3000:]
    assert counted == truth == in_db
