"""The live dashboard: a Dash app that re-reads the job's database every few seconds.

Dash (Flask + React + Plotly) was chosen over Streamlit and Panel for its weight and its
page: it is one ``pip install`` without Tornado, Bokeh or a websocket server, the page is
plain HTML plus one JSON request per refresh, and its figures are Plotly's (the data of
every chart stays readable in the browser, which the browser test relies on).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import plotly.graph_objects as go
from dash import Dash, Input, Output, dcc, html

from dashboard.data import Database, DataUnavailableError, Health, Incident, Snapshot
from dashboard.lag import Lag, LagProbe

SUCCESS_COLOUR, FAILURE_COLOUR, RATE_COLOUR = "#2e7d32", "#c62828", "#1f4e9c"

# A read-only view: no Plotly toolbar over the charts.
GRAPH_CONFIG = {"displayModeBar": False}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.4rem; margin: 0 0 .3rem 0; }
.muted { color: #666; font-size: .9rem; }
.notice { padding: 1rem 1.2rem; border-radius: 6px; margin: 1rem 0; font-size: 1.05rem; }
.notice.empty { background: #eef4fb; border: 1px solid #b6cce6; }
.notice.error { background: #fdeeee; border: 1px solid #e5b0b0; }
.cards { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .9rem; min-width: 9rem; }
.card .label { color: #666; font-size: .8rem; }
.card .value { font-size: 1.25rem; font-weight: 600; }
.charts { display: grid; grid-template-columns: 2fr 1fr; gap: 1rem; }
table { border-collapse: collapse; margin-top: 1rem; }
th, td { border-bottom: 1px solid #e3e3e3; padding: .25rem .7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
h2 { font-size: 1.1rem; margin: 1.2rem 0 0 0; }
#alerts-table td:first-child { color: #c62828; font-weight: 600; }
"""


def number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def card(label: str, value: str, element_id: str) -> html.Div:
    return html.Div(
        [html.Div(label, className="label"), html.Div(value, className="value", id=element_id)],
        className="card",
    )


def lag_cards(lag: Lag | None) -> list[html.Div]:
    if lag is None:
        records = seconds = "n/a"
        note = "not measured: the dashboard runs without --bootstrap-servers"
    elif lag.error:
        records = seconds = "n/a"
        note = lag.error
    else:
        records = number(lag.records)
        seconds = number(lag.seconds, 1)
        note = "records on the topic after the last batch; age of the oldest of them"
    return [
        html.Div(
            [
                html.Div("Lag (records)", className="label"),
                html.Div(records, className="value", id="health-lag-records"),
            ],
            className="card",
            title=note,
        ),
        html.Div(
            [
                html.Div("Lag (seconds)", className="label"),
                html.Div(seconds, className="value", id="health-lag-seconds"),
            ],
            className="card",
            title=note,
        ),
    ]


def health_cards(health: Health, lag: Lag | None) -> html.Div:
    stamp = health.last_batch_time.strftime("%Y-%m-%d %H:%M:%S UTC")
    return html.Div(
        [
            card("Last batch", f"#{health.last_batch} at {stamp}", "health-last-batch"),
            card("Since its write", f"{health.seconds_since_last_batch:,.0f} s", "health-age"),
            card("Input rate (events/s)", number(health.input_per_s), "health-input-rate"),
            card(
                "Last batch processed (records/s)",
                number(health.processed_per_s),
                "health-processed-rate",
            ),
            card("Batches per minute", number(health.batches_per_minute, 1), "health-batches"),
            card("Logins counted", number(health.total_logins), "health-total-logins"),
            card("Records rejected", number(health.total_rejected), "health-total-rejected"),
            *lag_cards(lag),
        ],
        className="cards",
    )


def logins_figure(snapshot: Snapshot) -> go.Figure:
    periods = [r.period for r in snapshot.counts]
    figure = go.Figure(
        [
            go.Bar(
                name="successful",
                x=periods,
                y=[r.successful for r in snapshot.counts],
                marker_color=SUCCESS_COLOUR,
            ),
            go.Bar(
                name="failed",
                x=periods,
                y=[r.failed for r in snapshot.counts],
                marker_color=FAILURE_COLOUR,
            ),
            go.Scatter(
                name="failure rate",
                x=periods,
                y=[round(100 * r.failure_rate, 2) for r in snapshot.counts],
                yaxis="y2",
                mode="lines+markers",
                line_color=RATE_COLOUR,
            ),
        ]
    )
    figure.update_layout(
        barmode="stack",
        title=f"Logins per {snapshot.period_title}",
        yaxis={"title": "logins"},
        yaxis2={
            "title": "failure rate (%)",
            "overlaying": "y",
            "side": "right",
            "showgrid": False,
            "rangemode": "tozero",
        },
        xaxis={"type": "category"},
        legend={"orientation": "h", "y": -0.2},
        margin={"l": 50, "r": 50, "t": 40, "b": 40},
        height=380,
    )
    return figure


def rejected_figure(snapshot: Snapshot) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=[n for _, n in snapshot.rejected],
            y=[reason for reason, _ in snapshot.rejected],
            orientation="h",
            marker_color="#8d6e63",
        )
    )
    figure.update_layout(
        title="Rejected records per reason",
        margin={"l": 140, "r": 20, "t": 40, "b": 40},
        height=380,
        yaxis={"type": "category"},
    )
    return figure


def counts_table(snapshot: Snapshot) -> html.Table:
    total = (
        sum(r.logins for r in snapshot.counts),
        sum(r.successful for r in snapshot.counts),
        sum(r.failed for r in snapshot.counts),
    )
    rate = f"{100 * total[2] / total[0]:.2f} %" if total[0] else "n/a"
    head = html.Tr(
        [
            html.Th(h)
            for h in (snapshot.period_kind, "logins", "successful", "failed", "failure rate")
        ]
    )
    body = [
        html.Tr(
            [
                html.Td(r.period),
                html.Td(f"{r.logins:,}"),
                html.Td(f"{r.successful:,}"),
                html.Td(f"{r.failed:,}"),
                html.Td(f"{100 * r.failure_rate:.2f} %"),
            ]
        )
        for r in snapshot.counts
    ]
    body.append(
        html.Tr(
            [html.Td("total"), *(html.Td(f"{n:,}") for n in total), html.Td(rate)],
            className="total",
        )
    )
    return html.Table([html.Thead(head), html.Tbody(body)], id="counts-table")


def alerts_panel(alerts: list[Incident]) -> html.Div:
    """The newest credential-stuffing incidents, newest first (times in UTC)."""
    title = html.H2("Credential-stuffing alerts")
    if not alerts:
        note = "No credential-stuffing alert."
        return html.Div([title, html.Div(note, className="notice empty", id="alerts-none")],
                        id="alerts-panel")  # fmt: skip

    def span(incident: Incident) -> str:
        first, last = incident.first_event_time, incident.last_event_time
        end = f"{last:%H:%M:%S}" if last.date() == first.date() else f"{last:%Y-%m-%d %H:%M:%S}"
        return f"{first:%Y-%m-%d %H:%M:%S} to {end}"

    columns = ("address", "events (UTC)", "failed logins", "accounts", "windows", "detected")
    rows = [
        html.Tr(
            [
                html.Td(i.address),
                html.Td(span(i)),
                html.Td(f"{i.failed:,}"),
                html.Td(f"{i.accounts:,}"),
                html.Td(f"{i.windows:,}"),
                html.Td(f"{i.detected_at:%Y-%m-%d %H:%M:%S}"),
            ]
        )
        for i in alerts
    ]
    table = html.Table(
        [html.Thead(html.Tr([html.Th(c) for c in columns])), html.Tbody(rows)], id="alerts-table"
    )
    return html.Div([title, table], id="alerts-panel")


def render(
    database: Database, now: datetime | None = None, lag_probe: LagProbe | None = None
) -> list[Any]:
    """The page's content for the database as it is now: data, "no data yet", or the error."""
    now = now or datetime.now(timezone.utc)
    read_at = html.Div(
        f"Read {now.strftime('%H:%M:%S')} UTC from {database.shown_url}",
        className="muted",
        id="read-at",
    )
    try:
        snapshot = database.snapshot(now)
    except DataUnavailableError as exc:
        return [read_at, html.Div(str(exc), className="notice error", id="status")]
    if snapshot.empty:
        return [
            read_at,
            html.Div(
                'No data yet: start the job (make demo, make job ARGS="--output-dir '
                'output/logins", or make submit with Docker) and this page fills in by itself.',
                className="notice empty",
                id="status",
            ),
        ]
    charts = [dcc.Graph(id="logins-chart", figure=logins_figure(snapshot), config=GRAPH_CONFIG)]
    if snapshot.rejected:
        charts.append(
            dcc.Graph(id="rejected-chart", figure=rejected_figure(snapshot), config=GRAPH_CONFIG)
        )
    else:
        charts.append(html.Div("No record rejected.", className="notice empty", id="rejected-none"))
    parts: list[Any] = [read_at]
    if snapshot.health is not None:
        lag = lag_probe.measure(snapshot.health.end_offsets, now) if lag_probe else None
        parts.append(health_cards(snapshot.health, lag))
    parts += [
        alerts_panel(snapshot.alerts),
        html.Div(charts, className="charts"),
        counts_table(snapshot),
    ]
    return parts


def create_app(database: Database, refresh_s: float, lag_probe: LagProbe | None = None) -> Dash:
    """The Dash app; the page renders the data at load and re-reads it every ``refresh_s``."""
    app = Dash(
        __name__,
        title="Login pipeline",
        update_title=None,  # no "Updating..." flicker in the tab on every refresh
        serve_locally=True,  # no CDN: the page works offline and on a closed network
    )
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + STYLE + "</style>")

    def layout() -> html.Div:
        return html.Div(
            [
                html.H1("Login pipeline: live counts"),
                html.Div(
                    f"Refreshes every {refresh_s:g} s.",
                    className="muted",
                ),
                dcc.Interval(id="tick", interval=int(refresh_s * 1000)),
                html.Div(render(database, lag_probe=lag_probe), id="content"),
            ]
        )

    app.layout = layout

    @app.callback(
        Output("content", "children"), Input("tick", "n_intervals"), prevent_initial_call=True
    )
    def refresh(_ticks: int) -> list[Any]:
        return render(database, lag_probe=lag_probe)

    return app
