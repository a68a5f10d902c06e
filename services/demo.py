"""``make demo``: the whole pipeline on this machine, no Docker, in about a minute.

Starts the local broker if needed, backfills ~50k login events over the last 24 months into
a fresh topic, drains it with the Spark job (available-now) with its credential-stuffing
detector on, and checks that the months add up to exactly the number of events Kafka
acknowledged and that every burst the producer made (of 20 attempts or more) was alerted,
with no alert outside a burst. Runnable again and again: each run uses new topics and a new
checkpoint and removes the previous demo's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from contract.alerts import Score, score_alerts
from contract.tables import (
    ALERTS_TABLE,
    DEFAULT_DB_NAME,
    DEFAULT_PERIOD,
    PERIODS,
    as_utc,
    read_counts,
)
from services.kafka import LocalKafkaError, default_broker, shown
from services.settings import LOCAL_DIR, PROJECT_ROOT
from services.spark_submit import submit_command, submit_env
from services.waiting import Waiting

DEMO_TOPIC_PREFIX = "demo-logins-"
DEMO_ALERTS_PREFIX = "demo-alerts-"
DEMO_DIR = LOCAL_DIR / "demo"
OUTPUT_DIR = PROJECT_ROOT / "output" / "demo"


def remove_old_demo_topics(bootstrap_servers: str) -> None:
    """Delete earlier demo topics so repeated demos do not fill the local broker."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","))
    try:
        prefixes = (DEMO_TOPIC_PREFIX, DEMO_ALERTS_PREFIX)
        old = [t for t in admin.list_topics() if t.startswith(prefixes)]
        if old:
            admin.delete_topics(old)
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__)
    parser.add_argument("--count", type=int, default=50_000, help="events to backfill")
    parser.add_argument("--months", type=int, default=24, help="months of history")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR, help="where the CSV goes")
    parser.add_argument(
        "--period", choices=list(PERIODS), default=DEFAULT_PERIOD, help="what to count per"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    broker = default_broker()
    try:
        if broker.pid() is None:
            print(f"==> Starting Kafka (KRaft) on {broker.bootstrap_servers}", flush=True)
            with Waiting("Kafka to answer (a first run downloads its jars from Maven Central)"):
                broker.start()
        broker.start()  # already running: returns once it answers
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bootstrap = broker.bootstrap_servers
    remove_old_demo_topics(bootstrap)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    topic, alerts_topic = DEMO_TOPIC_PREFIX + stamp, DEMO_ALERTS_PREFIX + stamp
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    output_dir: Path = args.output_dir
    shutil.rmtree(output_dir, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    summary_file = DEMO_DIR / "producer-summary.json"
    bursts_file = DEMO_DIR / "bursts.jsonl"

    print(
        f"==> 1/2 Producing {args.count:,} login events over the last {args.months} months "
        f"to topic {topic} on {bootstrap}",
        flush=True,
    )
    env = submit_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap, LOGINS_TOPIC=topic)
    producer_args = [
        "--months",
        str(args.months),
        "--count",
        str(args.count),
        "--seed",
        "42",
        "--summary-json",
        str(summary_file),
        "--bursts-file",
        str(bursts_file),
    ]
    produced = subprocess.run(
        [sys.executable, "-m", "producer", *producer_args], env=env, cwd=PROJECT_ROOT, check=False
    )
    if produced.returncode != 0:
        print("error: the producer failed; see above.", file=sys.stderr)
        return produced.returncode
    acknowledged = json.loads(summary_file.read_text())["acknowledged"]

    spark_log = DEMO_DIR / "spark-submit.log"
    print(
        f"==> 2/2 Counting logins per month with Spark (trigger available-now; "
        f"Spark's log: {shown(spark_log)})",
        flush=True,
    )
    job_args = [
        "--trigger",
        "available-now",
        "--checkpoint-dir",
        str(DEMO_DIR / "checkpoint"),
        "--output-dir",
        str(output_dir),
        "--period",
        args.period,
        "--alerts-topic",
        alerts_topic,
    ]
    with spark_log.open("w") as log:
        returncode = run_job(submit_command(*job_args), env, log)
    if returncode != 0:
        print(spark_log.read_text()[-4000:], file=sys.stderr)
        print(
            f"error: the Spark job failed (exit {returncode}); the end of its log is above.",
            file=sys.stderr,
        )
        return returncode

    table = output_dir / PERIODS[args.period].csv_name
    period, counts = read_counts(table)
    counted = sum(logins for logins, _, _ in counts.values())
    line, status = verdict(acknowledged, counted, len(counts), period.key)
    print(f"{line} Table: {shown(table)}")
    bursts = [json.loads(x) for x in bursts_file.read_text().splitlines()]
    line, alerts_status = alerts_verdict(
        score_alerts(read_alerts(output_dir / DEFAULT_DB_NAME), bursts), alerts_topic
    )
    print(line)
    status = status or alerts_status
    hint = dashboard_hint(output_dir)
    if hint:
        print(hint)
    print(f"Demo finished in {time.monotonic() - started:.1f} s.")
    return status


def run_job(command: list[str], env: dict[str, str], log: IO[str]) -> int:
    """Run the job with its log in ``log`` and its console output passed through, with a
    line whenever that output is quiet for a few seconds: a first start resolves the Kafka
    connector and records Spark's classes (about a minute), and a batch of 50,000 events
    takes a while, both otherwise silent."""
    job = subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=log, text=True
    )
    assert job.stdout is not None
    what = "Spark (a first run resolves the Kafka connector and records Spark's classes)"
    with Waiting(what, closing=False) as waiting:
        for line in job.stdout:
            waiting.say(line)
    return job.wait()


def dashboard_hint(output_dir: Path) -> str | None:
    """How to open the live dashboard on the database the job just wrote next to the CSV."""
    database = (output_dir / DEFAULT_DB_NAME).resolve()
    if not database.exists():
        return None
    command = "make dashboard"
    if database != (OUTPUT_DIR / DEFAULT_DB_NAME).resolve():  # the dashboard's default
        command += f' ARGS="--db-url sqlite:///{database}"'
    return f"Dashboard of this run: {command}, then open http://127.0.0.1:8050"


def read_alerts(database: Path) -> list[dict[str, Any]]:
    """The job's alerts table (SQLite keeps the UTC times it was given, without the zone)."""
    with closing(sqlite3.connect(database)) as connection:
        rows = connection.execute(
            f"SELECT address, window_start, window_end FROM {ALERTS_TABLE}"
        ).fetchall()
    utc = [(a, *(as_utc(datetime.fromisoformat(t)) for t in (s, e))) for a, s, e in rows]
    return [{"address": a, "window_start": s, "window_end": e} for a, s, e in utc]


def alerts_verdict(score: Score, alerts_topic: str) -> tuple[str, int]:
    """The demo checking its alerts against the bursts the producer recorded."""
    ok = score.found == score.bursts and score.true_alerts == score.alerts
    return (
        f"{'OK' if ok else 'MISMATCH'}: the producer made {score.bursts} credential-stuffing "
        f"bursts of 20+ attempts; {score.found} alerted, {score.alerts - score.true_alerts} "
        f"of {score.alerts} alert windows outside a burst. Alerts: topic {alerts_topic}, "
        f"table {ALERTS_TABLE}.",
        0 if ok else 1,
    )


def verdict(
    acknowledged: int, counted: int, buckets: int, period: str = DEFAULT_PERIOD
) -> tuple[str, int]:
    """The demo checking itself: the periods must add up to what Kafka acknowledged."""
    status = 0 if counted == acknowledged else 1
    return (
        f"{'OK' if status == 0 else 'MISMATCH'}: Kafka acknowledged {acknowledged:,} events; "
        f"Spark counted {counted:,} logins in {buckets} {period}s.",
        status,
    )


if __name__ == "__main__":
    raise SystemExit(main())
