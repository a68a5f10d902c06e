"""``make demo``: the whole pipeline on this machine, no Docker, in about a minute.

Starts the local broker if needed, backfills ~50k login events over the last 24 months into
a fresh topic, drains it with the Spark job (available-now), and checks that the months add
up to exactly the number of events Kafka acknowledged. Runnable again and again: each run
uses a new topic and checkpoint and removes the previous demo's.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone

from services.kafka import LocalKafkaError, default_broker
from services.settings import LOCAL_DIR, PROJECT_ROOT
from services.spark_submit import submit_command, submit_env

DEMO_TOPIC_PREFIX = "demo-logins-"
DEMO_DIR = LOCAL_DIR / "demo"
OUTPUT_DIR = PROJECT_ROOT / "output" / "demo"


def remove_old_demo_topics(bootstrap_servers: str) -> None:
    """Delete earlier demo topics so repeated demos do not fill the local broker."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","))
    try:
        old = [t for t in admin.list_topics() if t.startswith(DEMO_TOPIC_PREFIX)]
        if old:
            admin.delete_topics(old)
    finally:
        admin.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.demo", description=__doc__)
    parser.add_argument("--count", type=int, default=50_000, help="events to backfill")
    parser.add_argument("--months", type=int, default=24, help="months of history")
    args = parser.parse_args(argv)

    started = time.monotonic()
    broker = default_broker()
    try:
        broker.start()
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    bootstrap = broker.bootstrap_servers
    remove_old_demo_topics(bootstrap)
    topic = DEMO_TOPIC_PREFIX + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    shutil.rmtree(OUTPUT_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    summary_file = DEMO_DIR / "producer-summary.json"

    print(
        f"==> 1/2 Producing {args.count:,} login events over the last {args.months} months "
        f"to topic {topic} on {bootstrap}",
        flush=True,
    )
    env = submit_env(KAFKA_BOOTSTRAP_SERVERS=bootstrap, LOGINS_TOPIC=topic)
    produced = subprocess.run(
        [
            sys.executable,
            "-m",
            "producer",
            "--months",
            str(args.months),
            "--count",
            str(args.count),
            "--seed",
            "42",
            "--summary-json",
            str(summary_file),
        ],
        env=env,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if produced.returncode != 0:
        print("error: the producer failed; see above.", file=sys.stderr)
        return produced.returncode
    acknowledged = json.loads(summary_file.read_text())["acknowledged"]

    print("==> 2/2 Counting logins per month with Spark (trigger available-now)", flush=True)
    job = subprocess.run(
        submit_command(
            "--trigger",
            "available-now",
            "--checkpoint-dir",
            str(DEMO_DIR / "checkpoint"),
            "--output-dir",
            str(OUTPUT_DIR),
        ),
        env=env,
        cwd=PROJECT_ROOT,
        check=False,
    )
    if job.returncode != 0:
        print("error: the Spark job failed; see above.", file=sys.stderr)
        return job.returncode

    with (OUTPUT_DIR / "monthly_logins.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    counted = sum(int(row["logins"]) for row in rows)
    elapsed = time.monotonic() - started
    verdict = "OK" if counted == acknowledged else "MISMATCH"
    print(
        f"{verdict}: Kafka acknowledged {acknowledged:,} events; Spark counted {counted:,} "
        f"logins in {len(rows)} months. Table: {OUTPUT_DIR / 'monthly_logins.csv'}"
    )
    print(f"Demo finished in {elapsed:.1f} s.")
    return 0 if counted == acknowledged else 1


if __name__ == "__main__":
    raise SystemExit(main())
