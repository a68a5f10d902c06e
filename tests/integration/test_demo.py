"""``make demo`` end to end, twice in a row, on its own broker (not the user's)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from bench.memory import DEMO_ROLES
from bench.probes import MemorySampler
from contract.alerts import AlertRule
from contract.tables import read_counts
from services.kafka import LocalKafka
from services.settings import PROJECT_ROOT
from tests.support.kafka import free_port, read_topic
from tests.support.truth import expected_alerts, expected_counts

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run_timed(
    command: list[str], env: dict[str, str], memory: MemorySampler
) -> tuple[subprocess.CompletedProcess, float]:
    """Run ``command`` as a user's terminal would show it (stdout and stderr in one stream),
    its processes watched by ``memory``; its result and the longest time between two lines."""
    process = subprocess.Popen(
        command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    memory.roots.append(process.pid)
    assert process.stdout is not None
    lines: list[str] = []
    last = time.monotonic()
    longest = 0.0
    for line in process.stdout:
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        lines.append(line)
    returncode = process.wait(timeout=60)
    return subprocess.CompletedProcess(command, returncode, "".join(lines), ""), longest


def test_demo_runs_twice_and_periods_add_up_to_what_kafka_acknowledged(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{port}",
        "PIPELINE_LOCAL_DIR": str(tmp_path / "local"),
    }
    output = tmp_path / "output"
    command = [
        sys.executable,
        "-m",
        "services.demo",
        "--count",
        "3000",
        "--output-dir",
        str(output),
    ]
    broker = LocalKafka(home=tmp_path / "local" / "kafka", port=port, controller_port=port + 1)
    topics = []
    try:
        for run, extra in ((1, []), (2, ["--period", "week"])):
            memory = MemorySampler(roles=DEMO_ROLES)
            memory.start()
            try:
                result, silence = run_timed([*command, *extra], env, memory)
            finally:
                memory.stop()
            assert result.returncode == 0, f"run {run}:\n{result.stdout}"
            # Never silent for long: every wait says what it waits for (5 s apart, slack
            # for a loaded machine), the broker's start on the first run included.
            assert silence < 15, f"run {run}: {silence:.0f} s without a line:\n{result.stdout}"
            assert "    waiting for Spark (a first run resolves" in result.stdout
            if run == 1:
                assert "    waiting for Kafka to answer" in result.stdout
                # make bench's memory step (not run by the tests: it would be a third demo)
                # finds every role of the pipeline in the demo's processes.
                assert all(memory.peaks[role] > 0 for role in DEMO_ROLES), memory.peaks
            assert (
                "OK: Kafka acknowledged 3,000 events; Spark counted 3,000 logins" in result.stdout
            )
            assert "Demo finished in" in result.stdout
            topics.append(
                next(
                    line.split("to topic ")[1].split()[0]
                    for line in result.stdout.splitlines()
                    if "to topic " in line
                )
            )
        # The second run used a fresh topic and removed the first one.
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        on_broker = set(admin.list_topics())
        admin.close()
        first, topic = topics
        assert first != topic
        assert topic in on_broker and first not in on_broker, (topics, on_broker)
        events = [json.loads(r.value) for r in read_topic(broker.bootstrap_servers, topic, 3000)]
        # The second run counted per ISO week (make demo ARGS="--period week").
        period, table = read_counts(output / "weekly_logins.csv")
        assert period.key == "week"
        assert table == expected_counts(events, period="week")
        # 24 months of ISO weeks (about 105; 3,000 events leave a few empty).
        assert 90 <= len(table) <= 106 and all(period.matches(week) for week in table)
        assert "logins in" in result.stdout and " weeks. Table: " in result.stdout
        # The demo ends with the dashboard command for its database, which holds the truth.
        database = (output / "logins.db").resolve()
        assert (
            f'Dashboard of this run: make dashboard ARGS="--db-url sqlite:///{database}", '
            "then open http://127.0.0.1:8050\n"
        ) in result.stdout
        connection = sqlite3.connect(database)
        rows = connection.execute(
            "SELECT period, logins, successful, failed FROM login_counts WHERE period_kind = ?",
            ("week",),
        ).fetchall()
        alerts = connection.execute(
            "SELECT address, window_start, failed, accounts FROM login_alerts"
        ).fetchall()
        connection.close()
        assert {r[0]: tuple(r[1:]) for r in rows} == table
        # The detector ran beside the counts: its table holds exactly the windows counted
        # here from the events read back, and the demo compared them with the producer's
        # bursts (the 3,000 events of seed 42 hold one, of 96 attempts).
        failures = [
            (datetime.fromisoformat(e["timestamp"]), e["user_id"], e["ip_address"])
            for e in events
            if not e["success"]
        ]
        assert sorted(
            (a, datetime.fromisoformat(w).replace(tzinfo=timezone.utc), f, n)
            for a, w, f, n in alerts
        ) == expected_alerts(failures, AlertRule())
        bursts_file = tmp_path / "local" / "demo" / "bursts.jsonl"
        bursts = [json.loads(x) for x in bursts_file.read_text().splitlines()]
        big = sum(b["attempts"] >= 20 for b in bursts)
        assert big >= 1 and alerts
        assert (
            f"OK: the producer made {big} credential-stuffing bursts of 20+ attempts; {big} "
            f"alerted, 0 of {len(alerts)} alert windows outside a burst." in result.stdout
        )
    finally:
        broker.stop()
