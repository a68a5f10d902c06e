"""The dashboard without a browser: health figures, the three states of the page (data,
no data yet, database unavailable) and its command line."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from dashboard.__main__ import DEFAULT_DB_URL, build_parser
from dashboard.app import create_app, render
from dashboard.data import (
    CountRow,
    Database,
    DataUnavailableError,
    compute_health,
    read_only_url,
)
from dashboard.lag import Lag, LagProbe, records_behind
from tests.support.database import T0, written_database


def progress(batch_id: int, seconds: float, read: int | None, **extra: object) -> dict:
    return {
        "batch_id": batch_id,
        "batch_time": (T0 + timedelta(seconds=seconds)).replace(tzinfo=None),  # as SQLite
        "written_at": T0 + timedelta(seconds=seconds + 2),
        "records_read": read,
        "records_per_s": 500.0,
        "total_logins": 1000 + batch_id,
        "total_rejected": 3,
        "end_offsets": '{"t": {"0": 7}}',
        **extra,
    }


def test_health_from_the_last_batches():
    rows = [progress(0, 0, 100), progress(1, 10, 40), progress(2, 20, 60), progress(3, 30, 50)]
    health = compute_health(rows, T0 + timedelta(seconds=42))
    assert health.last_batch == 3
    assert health.last_batch_time == T0 + timedelta(seconds=30)
    assert health.seconds_since_last_batch == 10  # since the row was written
    assert health.input_per_s == (40 + 60 + 50) / 30
    assert health.batches_per_minute == 3 * 60 / 30
    assert (health.processed_per_s, health.total_logins, health.total_rejected) == (500.0, 1003, 3)
    assert health.end_offsets == {"t": {"0": 7}}


def test_one_batch_or_an_unknown_count_gives_no_rate_rather_than_a_wrong_one():
    assert compute_health([], T0) is None
    single = compute_health([progress(0, 0, 100)], T0)
    assert (single.input_per_s, single.batches_per_minute) == (None, None)
    unknown = compute_health([progress(0, 0, 100), progress(1, 10, None)], T0)
    assert unknown.input_per_s is None and unknown.batches_per_minute == 6


def test_the_failure_rate_of_an_empty_period_is_zero():
    assert CountRow("2026-01", 0, 0, 0).failure_rate == 0
    assert CountRow("2026-01", 8, 6, 2).failure_rate == 0.25


def test_sqlite_is_opened_read_only_and_other_urls_are_kept():
    assert read_only_url("sqlite:///out/logins.db") == (
        f"sqlite:///file:{Path('out/logins.db').resolve()}?mode=ro&uri=true"
    )
    url = "postgresql+pg8000://reader@db/logins"
    assert read_only_url(url) == url


def texts(component: object) -> list[str]:
    """Every string in a Dash component tree, depth first."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        return [t for c in component for t in texts(c)]
    children = getattr(component, "children", None)
    return texts(children) if children is not None else []


def by_id(component: object, element_id: str) -> object | None:
    if isinstance(component, list | tuple):
        return next((f for c in component if (f := by_id(c, element_id)) is not None), None)
    if getattr(component, "id", None) == element_id:
        return component
    children = getattr(component, "children", None)
    return by_id(children, element_id) if children is not None else None


def test_a_missing_database_is_explained_and_not_created(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'none' / 'logins.db'}")
    with pytest.raises(DataUnavailableError, match=r"^No database yet at sqlite:///"):
        database.snapshot()
    status = by_id(render(database), "status")
    assert "start the job" in status.children
    assert not (tmp_path / "none").exists()


def test_a_database_without_the_jobs_tables_says_no_data_yet(tmp_path):
    sqlite3.connect(tmp_path / "logins.db").close()
    status = by_id(render(Database(f"sqlite:///{tmp_path / 'logins.db'}")), "status")
    assert status.children.startswith("No data yet: start the job")


def test_an_unreachable_server_is_one_sentence_without_the_password(tmp_path):
    database = Database("postgresql+pg8000://reader:s3cret@127.0.0.1:1/logins")
    status = by_id(render(database), "status")
    assert status.children.startswith(
        "The database at postgresql+pg8000://reader:***@127.0.0.1:1/logins cannot be read: "
    )
    assert "s3cret" not in "".join(texts(render(database)))


def test_the_page_shows_the_table_with_totals_and_the_health(tmp_path):
    database = Database(written_database(tmp_path))
    content = render(database, T0 + timedelta(minutes=1))
    table = by_id(content, "counts-table")
    assert texts(table) == [
        "week", "logins", "successful", "failed", "failure rate",
        "2026-W47", "60", "57", "3", "5.00 %",
        "2026-W48", "98", "90", "8", "8.16 %",
        "total", "158", "147", "11", "6.96 %",
    ]  # fmt: skip
    assert texts(by_id(content, "health-last-batch")) == ["#1 at 2026-11-26 12:00:10 UTC"]
    assert texts(by_id(content, "health-input-rate")) == ["6"]  # 60 records in 10 s
    assert texts(by_id(content, "health-batches")) == ["6.0"]
    assert texts(by_id(content, "health-total-rejected")) == ["2"]
    figure = by_id(content, "logins-chart").figure
    assert figure.layout.title.text == "Logins per ISO week"
    assert [t.name for t in figure.data] == ["successful", "failed", "failure rate"]


def test_the_page_loads_the_basic_plotly_bundle_and_the_layout_has_the_data(tmp_path):
    app = create_app(Database(written_database(tmp_path)), 5)
    page = app.server.test_client().get("/").get_data(as_text=True)
    assert "plotly-basic.min.js" in page
    layout = app.server.test_client().get("/_dash-layout").get_data(as_text=True)
    assert "Refreshes every 5 s." in layout and "2026-W48" in layout


def test_the_command_line_defaults_to_the_demo_database_on_this_machine_only():
    args = build_parser({}).parse_args([])
    assert (args.db_url, args.host, args.port, args.refresh) == (
        DEFAULT_DB_URL, "127.0.0.1", 8050, 5
    )  # fmt: skip
    env = {"DASHBOARD_DB_URL": "sqlite:///x.db", "DASHBOARD_HOST": "0.0.0.0",
           "DASHBOARD_PORT": "9000", "DASHBOARD_REFRESH_SECONDS": "2.5"}  # fmt: skip
    args = build_parser(env).parse_args([])
    assert (args.db_url, args.host, args.port, args.refresh) == (
        "sqlite:///x.db",
        "0.0.0.0",
        9000,
        2.5,
    )


def test_the_database_password_comes_from_its_variable(monkeypatch, capsys):
    from dashboard import __main__ as command

    opened = []

    class Recorded:
        def __init__(self, url):
            opened.append(url)
            raise ValueError("stop here")

    monkeypatch.setattr("dashboard.data.Database", Recorded)
    monkeypatch.setenv("DASHBOARD_DB_PASSWORD", "r/o pw")
    assert command.main(["--db-url", "postgresql+pg8000://dashboard@postgres:5432/logins"]) == 2
    assert opened == ["postgresql+pg8000://dashboard:r%2Fo%20pw@postgres:5432/logins"]
    assert "r/o pw" not in capsys.readouterr().err
    assert command.main(["--db-url", "postgresql+pg8000://u:p@postgres/logins"]) == 2
    assert capsys.readouterr().err == (
        "error: DASHBOARD_DB_PASSWORD is set, but the database URL has a password already\n"
    )


def test_records_behind_counts_new_partitions_from_zero_and_never_negative():
    counted = {"t": {"0": 10, "1": 5}}
    assert records_behind(counted, {"t": {"0": 12, "1": 5, "2": 3}}) == 2 + 0 + 3
    assert records_behind(counted, {"t": {"0": 9, "1": 5}}) == 0


def test_an_unreachable_kafka_is_one_sentence_and_is_not_asked_again_at_once():
    from tests.support.kafka import free_port

    servers = f"127.0.0.1:{free_port()}"
    probe = LagProbe(servers)
    started = time.monotonic()
    lag = probe.measure({"t": {"0": 1}})
    assert time.monotonic() - started < 10
    assert (lag.records, lag.seconds) == (None, None)
    assert lag.error.startswith(f"Kafka at {servers} did not answer (")
    started = time.monotonic()
    assert probe.measure({"t": {"0": 1}}) == lag
    assert time.monotonic() - started < 0.1  # the failure is remembered for a while


def test_the_lag_cards_say_why_there_is_no_figure(tmp_path):
    class Unreachable:
        def measure(self, counted, now):
            assert counted == {"t": {"0": 160}}  # the last batch's end offsets
            return Lag(None, None, "Kafka at k:9092 did not answer (NoBrokersAvailable)")

    database = Database(written_database(tmp_path))
    content = render(database, T0, Unreachable())
    assert texts(by_id(content, "health-lag-records")) == ["n/a"]
    assert texts(by_id(render(database, T0), "health-lag-seconds")) == ["n/a"]
    measured = render(database, T0, type("Probe", (), {"measure": lambda *_: Lag(17, 2.5)})())
    assert texts(by_id(measured, "health-lag-records")) == ["17"]
    assert texts(by_id(measured, "health-lag-seconds")) == ["2.5"]
