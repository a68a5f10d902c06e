"""The credential-stuffing detector's transforms (consumer/alerts.py) on batch DataFrames.

Expectations are counted here from the events the tests make, window by window, not
taken from the detector."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from consumer.alerts import alert_windows, failed_login_candidates, failed_logins
from consumer.transform import classify_records
from contract.alerts import AlertRule
from tests.support.truth import expected_alerts
from tests.transforms.test_classify_and_dedupe import event, records_frame

T0 = datetime(2024, 5, 1, 12, 0, 3, tzinfo=timezone.utc)
RULE = AlertRule()


def login(at: datetime, user: str, address: str, success: bool = False, **extra) -> bytes:
    stamp = at.isoformat().replace("+00:00", "Z")
    return event(stamp, success, event_id=f"{address}-{user}-{stamp}", user_id=user,
                 ip_address=address, **extra)  # fmt: skip


def detect(spark, values: list[bytes], rule: AlertRule = RULE) -> list[tuple]:
    """The detector as the job runs it, from Kafka records to alert windows."""
    candidates = failed_login_candidates(records_frame(spark, values))
    classified = classify_records(candidates, for_filtering=True)
    found = alert_windows(failed_logins(classified), rule).collect()
    return sorted((r.address, r.window_start.replace(tzinfo=timezone.utc), r.failed, r.accounts)
                  for r in found)  # fmt: skip


def expected(events: list[tuple[datetime, str, str, bool]], rule: AlertRule = RULE) -> list:
    """(address, window start, failed, accounts) of every window crossing ``rule``."""
    return expected_alerts(((t, u, a) for t, u, a, ok in events if not ok), rule)


def test_a_burst_raises_exactly_the_windows_it_fills(spark):
    burst = [(T0 + timedelta(milliseconds=700 * i), f"user{i}", "203.0.113.9", False)
             for i in range(25)]  # fmt: skip
    alerts = detect(spark, [login(*e) for e in burst])
    assert alerts == expected(burst)
    # 25 failures over 16.8 s: the windows that hold at least 15 of them.
    assert len(alerts) >= 1 and all(a[0] == "203.0.113.9" for a in alerts)
    assert max(a[2] for a in alerts) == 25


def test_one_account_failing_many_times_is_not_credential_stuffing(spark):
    retries = [(T0 + timedelta(seconds=i), "ana", "198.51.100.7", False) for i in range(40)]
    assert detect(spark, [login(*e) for e in retries]) == []
    assert expected(retries) == []


def test_successes_and_rejected_records_never_count(spark):
    address = "203.0.113.10"
    events = [(T0 + timedelta(seconds=i), f"u{i}", address, False) for i in range(14)]
    values = [login(*e) for e in events]
    values += [login(T0 + timedelta(seconds=20), "u20", address, True)]  # a success
    values += [login(T0 + timedelta(seconds=21), "u21", address, schema_version=2)]  # rejected
    values += [login(T0 + timedelta(seconds=22), "u22", address, success="no")]  # rejected
    assert detect(spark, values) == []  # 14 failures counted: one short of the rule
    one_more = (T0 + timedelta(seconds=23), "u23", address, False)
    assert detect(spark, [*values, login(*one_more)]) == expected([*events, one_more]) != []


def test_generated_traffic_alerts_exactly_on_its_bursts(spark):
    """The producer's own traffic, bursts and all: every burst of at least 20 attempts has
    an alert from its address while it lasts, and no alert is outside a burst."""
    from producer.events import LoginEventGenerator
    from tests.support.truth import to_epoch_ms

    generator = LoginEventGenerator(seed=21, users=200, attack_probability=0.001)
    truth: list = []
    generator.on_burst = lambda burst: truth.append(burst.as_json())
    start = to_epoch_ms(T0)
    values = [r.value for r in generator.backfill(start, start + 3_600_000, 40_000)]
    alerts = detect(spark, values)
    parse = datetime.fromisoformat
    bursts = [(b["address"], parse(b["first_event_time"]), parse(b["last_event_time"]))
              for b in truth if b["attempts"] >= 20]  # fmt: skip
    assert len(bursts) >= 20
    window = timedelta(seconds=RULE.window_s)

    def overlaps(alert, burst) -> bool:
        return alert[0] == burst[0] and alert[1] <= burst[2] and burst[1] < alert[1] + window

    missed = [b for b in bursts if not any(overlaps(a, b) for a in alerts)]
    false = [a for a in alerts if not any(overlaps(a, b) for b in bursts)]
    assert (missed, false) == ([], [])


def test_the_records_left_unparsed_hold_no_failed_login(spark):
    """Every failed login of a valid event is among the candidates, however it is written
    (spacing, key order, other fields false), and nearly every success is not."""
    from producer.events import LoginEventGenerator

    generator = LoginEventGenerator(seed=4, users=50)
    values = [r.value for r in generator.backfill(0, 86_400_000, 3_000)]
    values += [
        b'{"success" :  false, "event_id": "a", "user_id": "u", '
        b'"timestamp": "2024-05-01T12:00:00Z", "ip_address": "192.0.2.1"}',
        b'{"event_id":"b","user_id":"v","timestamp":"2024-05-01T12:00:01Z","success":false}',
    ]
    records = records_frame(spark, values)
    everything = failed_logins(classify_records(records)).collect()
    candidates = failed_login_candidates(records)
    assert failed_logins(classify_records(candidates)).collect() == everything
    assert len(everything) > 50
    assert candidates.count() < 0.1 * len(values)
