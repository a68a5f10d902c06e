"""The alert rule's own checks, the alert record and the detection score (contract/alerts.py),
and the console line (consumer/alert_sink.py)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from consumer.alert_sink import format_alert_line
from contract.alerts import (
    ALERT_FIELDS,
    AlertRule,
    alert_record,
    incidents,
    parse_utc,
    score_alerts,
    utc_text,
)


def test_the_default_rule_holds_a_short_burst_in_one_window():
    rule = AlertRule()
    # 20 attempts at most 1,500 ms apart span 28.5 s; a window's start moves by one slide.
    assert rule.window_s - rule.slide_s >= 19 * 1.5
    assert rule.min_failed <= 20 - 1  # a burst of 20 may have one success


@pytest.mark.parametrize(
    "fields",
    [{"slide_s": 0}, {"slide_s": 70}, {"slide_s": 7}, {"min_failed": 0}, {"min_accounts": 0},
     {"watermark_s": -1}],
)  # fmt: skip
def test_a_rule_that_cannot_work_is_refused(fields):
    with pytest.raises(ValueError):
        AlertRule(**fields)


UTC = timezone.utc
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def alert(address: str, start_s: int, failed: int = 15, accounts: int = 12) -> dict:
    start = T + timedelta(seconds=start_s)
    return {
        "address": address, "window_start": start, "window_end": start + timedelta(minutes=1),
        "failed": failed, "accounts": accounts,
        "first_event_time": start + timedelta(seconds=5),
        "last_event_time": start + timedelta(seconds=50),
        "detected_at": T + timedelta(minutes=3), "published_at": None, "batch_id": 4,
    }  # fmt: skip


def test_an_alert_record_has_the_contract_fields_in_order_with_utc_times():
    record = alert_record(alert("203.0.113.9", 0))
    assert tuple(record) == ALERT_FIELDS
    assert record["window_start"] == "2026-03-01T12:00:00.000Z"
    assert record["last_event_time"] == "2026-03-01T12:00:50.000Z"
    assert json.loads(json.dumps(record)) == record
    with pytest.raises(ValueError, match="no time zone"):
        utc_text(datetime(2026, 3, 1))


def test_the_score_counts_bursts_found_and_alerts_outside_any_burst():
    def burst(address: str, first_s: float, last_s: float, attempts: int) -> dict:
        stamp = lambda s: (T + timedelta(seconds=s)).isoformat().replace("+00:00", "Z")  # noqa: E731
        return {"address": address, "first_event_time": stamp(first_s),
                "last_event_time": stamp(last_s), "attempts": attempts}  # fmt: skip

    bursts = [
        burst("a", 10, 40, 30),  # found by the alert at 0
        burst("b", 10, 40, 25),  # missed: b's alert is a minute after it
        burst("c", 10, 12, 5),  # small: not counted in recall, but an alert on it is true
    ]
    alerts = [alert("a", 0), alert("a", 40), alert("b", 41), alert("c", 0), alert("d", 0)]
    score = score_alerts(alerts, bursts)
    assert (score.bursts, score.found, score.alerts, score.true_alerts) == (2, 1, 5, 3)
    assert [b["address"] for b in score.missed] == ["b"]
    assert [a["address"] for a in score.false_alerts] == ["b", "d"]
    assert (score.recall, score.precision) == (0.5, 0.6)
    assert score_alerts([], []).recall == score_alerts([], []).precision == 1.0


def test_one_console_line_per_incident_of_overlapping_windows():
    new = [alert("a", 0, 15), alert("a", 10, 18, 17), alert("a", 300), alert("b", 10)]
    runs = incidents(new)
    assert [[w["window_start"] for w in run] for run in runs] == [
        [T, T + timedelta(seconds=10)],
        [T + timedelta(seconds=300)],
        [T + timedelta(seconds=10)],
    ]
    assert format_alert_line(runs[0]) == (
        "ALERT a: 18 failed logins against 17 accounts in 60 s "
        "(events 2026-03-01 12:00:05-12:01:00 UTC; 2 new windows)"
    )
    last = "(events 2026-03-01 12:00:15-12:01:00 UTC; 1 new window)"
    assert format_alert_line(runs[2]).endswith(last)


def test_times_written_by_utc_text_read_back_as_the_same_instant():
    moment = datetime(2026, 3, 1, 12, 0, 5, 250_000, tzinfo=UTC)
    assert parse_utc(utc_text(moment)) == moment
    assert parse_utc("2026-03-01T13:00:05.250+01:00") == moment
    with pytest.raises(ValueError, match="no time zone"):
        parse_utc("2026-03-01T12:00:05")
