"""The job writing to a real PostgreSQL through pg8000, and the dashboard reading it with a
role that may only read: the rows equal the truth computed from the events sent."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from contract.alerts import AlertRule
from contract.tables import ALERTS_TABLE, COUNTS_TABLE, PROGRESS_TABLE, REJECTED_TABLE
from dashboard.data import Database
from tests.support.jobs import run_job
from tests.support.kafka import produce_raw
from tests.support.postgres import LocalPostgres
from tests.support.truth import as_failures, expected_alerts, expected_counts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

JOB_PASSWORD, READER_PASSWORD = "job-pw", "reader-pw"


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    server = LocalPostgres()
    server.start()
    # The job owns the database (it creates its tables); the dashboard's role may read
    # what the job creates, nothing else.
    server.execute(
        f"CREATE ROLE job LOGIN PASSWORD '{JOB_PASSWORD}'",
        f"CREATE ROLE dashboard_reader LOGIN PASSWORD '{READER_PASSWORD}'",
        "CREATE DATABASE logins OWNER job",
    )
    server.execute(
        "GRANT CONNECT ON DATABASE logins TO dashboard_reader",
        "GRANT USAGE ON SCHEMA public TO dashboard_reader",
        "ALTER DEFAULT PRIVILEGES FOR ROLE job IN SCHEMA public "
        "GRANT SELECT ON TABLES TO dashboard_reader",
        database="logins",
    )
    yield server
    server.stop()


def login(n: int, month: int, success: bool) -> bytes:
    event = {"event_id": f"pg-{n}", "user_id": f"u{n % 4}", "success": success}
    return json.dumps(
        {**event, "timestamp": f"2026-{month:02d}-{1 + n % 28:02d}T10:00:00Z"}
    ).encode()


def test_the_job_writes_postgresql_and_the_reader_role_can_only_read(
    postgres, kafka_broker, topic, tmp_path
):
    # With them, 16 failed logins from one address against 16 accounts in 16 s: the windows
    # holding at least 15 of them are the detector's alerts, its ledger in PostgreSQL.
    burst = [{"event_id": f"burst-{n}", "user_id": f"victim{n}", "success": False,
              "timestamp": f"2026-03-05T10:00:{20 + n:02d}Z", "ip_address": "203.0.113.90"}
             for n in range(16)]  # fmt: skip
    values = [login(n, 1 + n % 4, n % 5 != 0) for n in range(30)]
    values += [json.dumps(e).encode() for e in burst] + [b"{broken"]
    produce_raw(kafka_broker.bootstrap_servers, topic, values)
    events = [json.loads(v) for v in values[:-1]]
    job_url = postgres.url("job", JOB_PASSWORD, "logins")
    alerts = ("--alerts-topic", f"{topic}-alerts")
    # The password travels in the environment, not on the command line.
    run = run_job(kafka_broker, topic, tmp_path, *alerts, env={"CONSUMER_DB_URL": job_url})
    assert f"Database: postgresql+pg8000://job:***@127.0.0.1:{postgres.port}/logins" in run.output
    assert JOB_PASSWORD not in run.output
    assert not (tmp_path / "output" / "logins.db").exists()  # the URL replaced the default

    reader_url = postgres.url("dashboard_reader", READER_PASSWORD, "logins")
    engine = sa.create_engine(reader_url)
    with engine.connect() as conn:
        counts = {
            r.period: (r.logins, r.successful, r.failed)
            for r in conn.execute(sa.text(f"SELECT * FROM {COUNTS_TABLE}"))
        }
        rejected = {
            r.reason: r.records
            for r in conn.execute(sa.text(f"SELECT reason, records FROM {REJECTED_TABLE}"))
        }
        (progress,) = conn.execute(sa.text(f"SELECT * FROM {PROGRESS_TABLE}")).mappings()
        windows = sorted(
            (r.address, r.window_start, r.failed, r.accounts, r.published_at is not None)
            for r in conn.execute(sa.text(f"SELECT * FROM {ALERTS_TABLE}"))
        )
    assert counts == expected_counts(events) == run.monthly
    assert rejected == {"not_json_object": 1}
    assert (progress["records_read"], progress["rejected"], progress["repeats_dropped"]) == (
        47, 1, 0
    )  # fmt: skip
    assert windows == [(*w, True) for w in expected_alerts(as_failures(burst), AlertRule())] != []
    assert progress["batch_time"].tzinfo is not None  # timestamptz in PostgreSQL

    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as c:
        c.execute(sa.text(f"DELETE FROM {COUNTS_TABLE}"))

    snapshot = Database(reader_url).snapshot()
    shown = {r.period: (r.logins, r.successful, r.failed) for r in snapshot.counts}
    assert shown == expected_counts(events)
    assert snapshot.health.total_logins == 46 and snapshot.health.total_rejected == 1
    (attack,) = snapshot.alerts
    assert (attack.address, attack.failed, attack.windows) == ("203.0.113.90", 16, len(windows))

    # A second batch on the same checkpoint updates the same rows.
    more = [login(100 + n, 4, True) for n in range(6)]
    produce_raw(kafka_broker.bootstrap_servers, topic, more)
    run_job(kafka_broker, topic, tmp_path, *alerts, env={"CONSUMER_DB_URL": job_url})
    snapshot = Database(reader_url).snapshot()
    shown = {r.period: (r.logins, r.successful, r.failed) for r in snapshot.counts}
    assert shown == expected_counts(events + [json.loads(v) for v in more])
    assert snapshot.health.last_batch == 1 and snapshot.health.last_batch_records == 6
    engine.dispose()
