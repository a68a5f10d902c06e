"""The dashboard without a browser: health figures, the three states of the page (data,
no data yet, database unavailable) and its command line."""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from contract.tables import ALERTS_TABLE, COUNTS_TABLE, PROGRESS_TABLE, REJECTED_TABLE
from dashboard.__main__ import DEFAULT_DB_URL, build_parser
from dashboard.app import (
    STYLE,
    counts_table,
    create_app,
    health_cards,
    lag_cards,
    logins_figure,
    number,
    rejected_figure,
    render,
)
from dashboard.data import (
    LATEST_ALERTS,
    CountRow,
    Database,
    DataUnavailableError,
    Snapshot,
    as_utc,
    compute_health,
    latest_incidents,
    read_only_url,
)
from dashboard.lag import Lag, LagProbe, records_behind
from tests.support.database import T0, write_job_batches, written_database


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


def test_the_page_is_titled_styled_served_locally_and_refreshes_its_content(tmp_path):
    app = create_app(Database(written_database(tmp_path)), 2.5)
    assert app.config.serve_locally is True and app.config.update_title is None
    page = app.server.test_client().get("/").get_data(as_text=True)
    assert "<title>Login pipeline</title>" in page
    assert "<style>" + STYLE + "</style>" in page
    head = page.split("</head>")[0]
    assert head.index("<style>") > head.index("<link")  # after Dash's own stylesheets
    layout = app.layout()
    heading, note, tick, content = layout.children
    assert heading.children == "Login pipeline: live counts"
    assert (note.children, note.className) == ("Refreshes every 2.5 s.", "muted")
    assert (tick.id, tick.interval) == ("tick", 2_500)
    assert content.id == "content"
    assert by_id(content.children, "logins-chart").figure.data
    callback = next(iter(app.callback_map.values()))
    assert callback["inputs"] == [{"id": "tick", "property": "n_intervals"}]
    assert next(iter(app.callback_map)) == "content.children"


def test_the_command_line_defaults_to_the_demo_database_on_this_machine_only():
    args = build_parser({}).parse_args([])
    assert (args.db_url, args.host, args.port, args.refresh) == (
        DEFAULT_DB_URL, "127.0.0.1", 8050, 5
    )  # fmt: skip
    assert args.bootstrap_servers == "localhost:9092"
    env = {"DASHBOARD_DB_URL": "sqlite:///x.db", "DASHBOARD_HOST": "0.0.0.0",
           "DASHBOARD_PORT": "9000", "DASHBOARD_REFRESH_SECONDS": "2.5",
           "KAFKA_BOOTSTRAP_SERVERS": "kafka:29092"}  # fmt: skip
    args = build_parser(env).parse_args([])
    assert args.bootstrap_servers == "kafka:29092"
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


# -- the page's parts from a snapshot, exactly (no database) ---------------------------------

MONTHS = Snapshot(
    "month",
    [CountRow("2026-01", 8, 6, 2), CountRow("2026-02", 3, 3, 0)],
    [("oversized", 2), ("unparseable", 5)],
    None,
)


def plain(figure) -> tuple[list[dict], dict]:
    """A figure's traces and layout as plain data, without Plotly's default template."""
    layout = figure.layout.to_plotly_json()
    layout.pop("template", None)
    return [trace.to_plotly_json() for trace in figure.data], layout


def test_the_logins_chart_stacks_both_outcomes_under_the_failure_rate():
    traces, layout = plain(logins_figure(MONTHS))
    periods = ["2026-01", "2026-02"]
    assert traces == [
        {"name": "successful", "x": periods, "y": [6, 3], "marker": {"color": "#2e7d32"},
         "type": "bar"},
        {"name": "failed", "x": periods, "y": [2, 0], "marker": {"color": "#c62828"},
         "type": "bar"},
        {"name": "failure rate", "x": periods, "y": [25.0, 0.0], "yaxis": "y2",
         "mode": "lines+markers", "line": {"color": "#1f4e9c"}, "type": "scatter"},
    ]  # fmt: skip
    assert layout == {
        "barmode": "stack",
        "title": {"text": "Logins per calendar month"},
        "yaxis": {"title": {"text": "logins"}},
        "yaxis2": {"title": {"text": "failure rate (%)"}, "overlaying": "y", "side": "right",
                   "showgrid": False, "rangemode": "tozero"},
        "xaxis": {"type": "category"},
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"l": 50, "r": 50, "t": 40, "b": 40},
        "height": 380,
    }  # fmt: skip


def test_the_rejections_chart_has_one_bar_per_reason():
    traces, layout = plain(rejected_figure(MONTHS))
    assert traces == [
        {"x": [2, 5], "y": ["oversized", "unparseable"], "orientation": "h",
         "marker": {"color": "#8d6e63"}, "type": "bar"}
    ]  # fmt: skip
    assert layout == {
        "title": {"text": "Rejected records per reason"},
        "margin": {"l": 140, "r": 20, "t": 40, "b": 40},
        "height": 380,
        "yaxis": {"type": "category"},
    }


def test_a_table_without_logins_has_no_failure_rate_and_an_unknown_period_keeps_its_name():
    empty = Snapshot("fortnight", [CountRow("2026-F1", 0, 0, 0)], [], None)
    assert empty.period_title == "fortnight"
    assert texts(counts_table(empty)) == [
        "fortnight", "logins", "successful", "failed", "failure rate",
        "2026-F1", "0", "0", "0", "0.00 %",
        "total", "0", "0", "0", "n/a",
    ]  # fmt: skip
    assert counts_table(empty).id == "counts-table"
    rows = counts_table(empty).children[1].children
    assert [getattr(row, "className", None) for row in rows] == [None, "total"]
    assert texts(counts_table(Snapshot("day", [CountRow("x", 1234, 1000, 234)], [], None))) == [
        "day", "logins", "successful", "failed", "failure rate",
        "x", "1,234", "1,000", "234", "18.96 %",
        "total", "1,234", "1,000", "234", "18.96 %",
    ]  # fmt: skip


def test_numbers_are_grouped_and_rounded_and_a_missing_one_is_named():
    assert number(None) == "n/a"
    assert number(1234.5) == "1,234"  # round half to even
    assert number(1235.5) == "1,236"
    assert number(1234.5678, 2) == "1,234.57"


def test_every_health_card_and_the_notes_of_the_lag_cards():
    health = compute_health(
        [progress(0, 0, 100), progress(1, 10, 4000, records_per_s=1234.5)],
        T0 + timedelta(seconds=15),
    )
    cards = health_cards(health, Lag(1500, 3.25))
    assert cards.className == "cards"
    assert [(c.children[0].children, c.children[1].children, c.children[1].id) for c in
            cards.children] == [
        ("Last batch", "#1 at 2026-11-26 12:00:10 UTC", "health-last-batch"),
        ("Since its write", "3 s", "health-age"),
        ("Input rate (events/s)", "400", "health-input-rate"),
        ("Last batch processed (records/s)", "1,234", "health-processed-rate"),
        ("Batches per minute", "6.0", "health-batches"),
        ("Logins counted", "1,001", "health-total-logins"),
        ("Records rejected", "3", "health-total-rejected"),
        ("Lag (records)", "1,500", "health-lag-records"),
        ("Lag (seconds)", "3.2", "health-lag-seconds"),
    ]  # fmt: skip
    assert {c.className for c in cards.children} == {"card"}
    assert [(c.children[0].className, c.children[1].className) for c in cards.children] == [
        ("label", "value")
    ] * 9
    measured = "records on the topic after the last batch; age of the oldest of them"
    assert [c.title for c in lag_cards(Lag(1, 0.0))] == [measured, measured]
    off = "not measured: the dashboard runs without --bootstrap-servers"
    assert [c.title for c in lag_cards(None)] == [off, off]
    failed = lag_cards(Lag(None, None, "Kafka at k:1 did not answer (X)"))
    assert [c.title for c in failed] == ["Kafka at k:1 did not answer (X)"] * 2
    assert [texts(c) for c in failed] == [["Lag (records)", "n/a"], ["Lag (seconds)", "n/a"]]


def test_the_page_says_when_it_read_what_and_that_nothing_was_rejected(tmp_path):
    sqlite3.connect(tmp_path / "logins.db").close()
    database = Database(f"sqlite:///{tmp_path / 'logins.db'}")
    content = render(database, T0)
    assert by_id(content, "read-at").children == (
        f"Read 12:00:00 UTC from sqlite:///{tmp_path / 'logins.db'}"
    )
    assert by_id(content, "read-at").className == "muted"
    assert by_id(content, "status").className == "notice empty"
    missing = Database(f"sqlite:///{tmp_path / 'none.db'}")
    assert by_id(render(missing, T0), "status").className == "notice error"

    class Clean(Database):
        def snapshot(self, now=None):
            return Snapshot("month", MONTHS.counts, [], None)

    clean = render(Clean(f"sqlite:///{tmp_path / 'logins.db'}"), T0)
    assert [getattr(part, "id", None) for part in clean] == [
        "read-at", "alerts-panel", None, "counts-table"
    ]  # fmt: skip
    assert texts(by_id(clean, "alerts-none")) == ["No credential-stuffing alert."]
    charts = clean[2]
    assert charts.className == "charts"
    assert [getattr(c, "id", None) for c in charts.children] == ["logins-chart", "rejected-none"]
    assert charts.children[0].config == {"displayModeBar": False}
    assert charts.children[1].children == "No record rejected."
    assert charts.children[1].className == "notice empty"
    page = render(written_database_at(tmp_path / "w"), T0)
    with_rejections = next(p for p in page if getattr(p, "className", None) == "charts")
    assert [c.id for c in with_rejections.children] == ["logins-chart", "rejected-chart"]
    assert with_rejections.children[1].config == {"displayModeBar": False}


def written_database_at(folder: Path) -> Database:
    folder.mkdir()
    return Database(written_database(folder))


def test_health_uses_the_last_ten_batches_and_a_zone_it_is_given():
    rows = [progress(i, 10 * i, 100 + i) for i in range(12)]
    health = compute_health(rows, T0 + timedelta(seconds=200))
    # Batches 2 to 11: the records of 3 to 11 over the 90 s since batch 2.
    assert health.input_per_s == sum(100 + i for i in range(3, 12)) / 90
    assert health.batches_per_minute == 9 * 60 / 90
    assert health.seconds_since_last_batch == 200 - 112
    early = compute_health(rows[:1], T0)  # the clock before the row's write: 0, not negative
    assert early.seconds_since_last_batch == 0.0
    no_offsets = compute_health([progress(0, 0, 1, end_offsets=None)], T0)
    assert no_offsets.end_offsets == {}
    aware = progress(0, 0, 1, batch_time=T0.astimezone(timezone(timedelta(hours=2))))
    assert compute_health([aware], T0).last_batch_time == T0
    assert as_utc(T0.replace(tzinfo=None)) == T0


def test_the_snapshot_sorts_periods_and_reasons_and_reads_the_last_ten_batches(tmp_path):
    url = write_job_batches(
        tmp_path,
        "day",
        (
            (
                100 * (batch_id + 1),
                [("2026-11-30", 10 + batch_id, 10 + batch_id, 0), ("2026-11-02", 5, 4, 1)],
                [("wrong_type", 1), ("empty_value", 3)],
                1.0,
            )
            for batch_id in range(12)
        ),
    )
    snapshot = Database(url).snapshot(T0 + timedelta(seconds=300))
    assert snapshot.period_kind == "day"
    assert [r.period for r in snapshot.counts] == ["2026-11-02", "2026-11-30"]
    assert snapshot.counts[1].logins == 21
    assert snapshot.rejected == [("empty_value", 3), ("wrong_type", 1)]
    health = snapshot.health
    assert (health.last_batch, health.last_batch_records) == (11, 100)
    # Batches 2 to 11 (the last ten): 9 batches' records over the 90 s since batch 2.
    assert health.input_per_s == 900 / 90


def test_a_database_without_every_table_of_the_job_has_no_data_yet(tmp_path):
    for missing in (COUNTS_TABLE, REJECTED_TABLE, PROGRESS_TABLE):
        path = tmp_path / f"without-{missing}.db"
        connection = sqlite3.connect(path)
        for table in {COUNTS_TABLE, REJECTED_TABLE, PROGRESS_TABLE} - {missing}:
            connection.execute(f"CREATE TABLE {table} (x INTEGER)")
        connection.commit()
        connection.close()
        snapshot = Database(f"sqlite:///{path}").snapshot(T0)
        assert snapshot == Snapshot("month", [], [], None), missing


def test_sqlite_urls_that_are_already_uris_or_in_memory_are_kept():
    for url in ("sqlite:///file:/data/logins.db?mode=ro&uri=true", "sqlite://", "sqlite:///"):
        assert read_only_url(url) == url


def test_the_first_line_of_a_database_error_is_the_sentence(tmp_path):
    import sqlalchemy as sa

    database = Database("postgresql+pg8000://reader:s3cret@db/logins")
    error = sa.exc.OperationalError("SELECT 1", {}, Exception("x" * 400 + "\nsecond line"))
    assert database.explain(error) == (
        "The database at postgresql+pg8000://reader:***@db/logins cannot be read: " + "x" * 300
    )
    blank = sa.exc.OperationalError("SELECT 1", {}, RuntimeError("  "))
    assert database.explain(blank).endswith("cannot be read: RuntimeError")
    sqlite = Database(f"sqlite:///{tmp_path / 'logins.db'}")
    opened = sa.exc.OperationalError("x", {}, Exception("unable to open database file"))
    assert sqlite.explain(opened) == (
        f"No database yet at sqlite:///{tmp_path / 'logins.db'}: start the job with "
        "--output-dir (make demo, or make job) and it will appear."
    )


def test_kafka_is_asked_again_once_the_pause_after_a_failure_is_over(monkeypatch):
    from dashboard import lag as lag_module

    probe = LagProbe("k:9092")
    calls = []

    def failing(counted, now):
        calls.append(now)
        raise OSError("refused")

    monkeypatch.setattr(probe, "_measure", failing)
    clock = [1000.0]
    monkeypatch.setattr(lag_module.time, "monotonic", lambda: clock[0])
    first = probe.measure({"t": {"0": 1}}, T0)
    assert first == Lag(None, None, "Kafka at k:9092 did not answer (OSError)")
    clock[0] += lag_module.RETRY_AFTER_S - 0.001
    assert probe.measure({"t": {"0": 1}}, T0) == first and len(calls) == 1
    clock[0] += 0.001
    assert probe.measure({"t": {"0": 1}}, T0) == first and len(calls) == 2
    monkeypatch.setattr(probe, "_measure", lambda counted, now: Lag(5, 1.0))
    clock[0] += lag_module.RETRY_AFTER_S
    assert probe.measure({"t": {"0": 1}}, T0) == Lag(5, 1.0)


def test_the_alerts_panel_lists_the_newest_incidents_first_one_row_per_attack(tmp_path):
    import sqlalchemy as sa

    from consumer.database import build_metadata

    url = written_database(tmp_path)
    table = build_metadata().tables[ALERTS_TABLE]
    engine = sa.create_engine(url)

    def window(address: str, start_s: int, failed: int, accounts: int, detected_s: int) -> dict:
        start = T0 + timedelta(seconds=start_s)
        return {
            "address": address, "window_start": start, "window_end": start + timedelta(minutes=1),
            "failed": failed, "accounts": accounts,
            "first_event_time": start + timedelta(seconds=3),
            "last_event_time": start + timedelta(seconds=40),
            "detected_at": T0 + timedelta(seconds=detected_s), "published_at": None, "batch_id": 1,
        }  # fmt: skip

    with engine.begin() as conn:
        table.create(conn, checkfirst=True)
        conn.execute(table.insert(), [
            window("203.0.113.9", 0, 16, 15, 100), window("203.0.113.9", 10, 21, 19, 101),
            window("198.51.100.4", 0, 30, 28, 200),  # detected later: listed first
            window("203.0.113.9", 3600, 15, 15, 3700),  # an hour later: a second attack
        ])  # fmt: skip
    content = render(Database(url), T0 + timedelta(hours=2))
    assert texts(by_id(content, "alerts-table")) == [
        "address", "events (UTC)", "failed logins", "accounts", "windows", "detected",
        "203.0.113.9", "2026-11-26 13:00:03 to 13:00:40", "15", "15", "1", "2026-11-26 13:01:40",
        "198.51.100.4", "2026-11-26 12:00:03 to 12:00:40", "30", "28", "1", "2026-11-26 12:03:20",
        "203.0.113.9", "2026-11-26 12:00:03 to 12:00:50", "21", "19", "2", "2026-11-26 12:01:40",
    ]  # fmt: skip
    rows = [window("192.0.2.1", 120 * n, 15, 15, n) for n in range(LATEST_ALERTS + 2)]
    latest = latest_incidents(rows)
    assert [i.detected_at for i in latest] == [
        T0 + timedelta(seconds=n) for n in range(LATEST_ALERTS + 1, 1, -1)
    ]
