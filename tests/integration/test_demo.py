"""``make demo`` end to end, twice in a row, on its own broker (not the user's)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from contract.tables import read_counts
from services.kafka import LocalKafka
from services.settings import PROJECT_ROOT
from tests.support.kafka import free_port, read_topic
from tests.support.truth import expected_counts

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
            result = subprocess.run(
                [*command, *extra],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=400,
                check=False,
            )
            assert result.returncode == 0, f"run {run}:\n{result.stdout}\n{result.stderr}"
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
        connection.close()
        assert {r[0]: tuple(r[1:]) for r in rows} == table
    finally:
        broker.stop()
