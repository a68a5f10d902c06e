"""The event generator: reproducible, plausible, and valid against the published schema."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections import Counter
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from producer.events import LoginEventGenerator, format_timestamp, uuid4_from
from producer.provider import ATTACK_USER_AGENTS
from producer.rhythm import backfill_timestamps
from tests.support.truth import to_epoch_ms

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "producer" / "login_event.schema.json").read_text()
)
START = to_epoch_ms(datetime(2024, 1, 1, tzinfo=timezone.utc))
END = to_epoch_ms(datetime(2026, 1, 1, tzinfo=timezone.utc))


@pytest.fixture(scope="module")
def events() -> list[dict]:
    generator = LoginEventGenerator(seed=11, users=500)
    return [json.loads(r.value) for r in generator.backfill(START, END, 20_000)]


def test_same_seed_gives_identical_records():
    first = list(LoginEventGenerator(seed=5, users=200).backfill(START, END, 3_000))
    second = list(LoginEventGenerator(seed=5, users=200).backfill(START, END, 3_000))
    assert first == second


def test_different_seeds_give_different_records():
    first = list(LoginEventGenerator(seed=5, users=200).backfill(START, END, 100))
    second = list(LoginEventGenerator(seed=6, users=200).backfill(START, END, 100))
    assert [r.value for r in first] != [r.value for r in second]


def test_every_event_is_valid_against_the_json_schema(events):
    validator = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
    errors = [e.message for event in events for e in validator.iter_errors(event)]
    assert errors == []


def test_the_schema_rejects_what_the_job_rejects():
    validator = Draft202012Validator(SCHEMA, format_checker=FormatChecker())
    good = {
        "event_id": "3d9c1724-11e2-4b8f-ab0d-549b6f03675a",
        "user_id": "ana",
        "timestamp": "2024-02-29T23:59:59.999Z",
        "browser_info": "Chrome",
        "country": "DE",
        "ip_address": "1.2.3.4",
        "success": True,
        "failure_reason": None,
        "schema_version": 1,
    }
    assert validator.is_valid(good)
    for field, bad in [
        ("success", "yes"),
        ("timestamp", "2024-02-29 23:59:59"),
        ("country", "Germany"),
        ("schema_version", 2),
        ("event_id", "x"),
    ]:
        assert not validator.is_valid({**good, field: bad}), field
    assert not validator.is_valid({k: v for k, v in good.items() if k != "timestamp"})


def test_key_is_the_user_id_and_the_value_is_compact_json():
    record = next(LoginEventGenerator(seed=1, users=50).backfill(START, END, 1))
    event = json.loads(record.value)
    assert record.key == event["user_id"].encode()
    assert record.event_time_ms == to_epoch_ms(datetime.fromisoformat(event["timestamp"]))


def test_backfill_has_exact_count_in_range_and_in_order():
    generator = LoginEventGenerator(seed=3, users=100)
    records = list(generator.backfill(START, END, 12_345))
    assert len(records) == 12_345
    times = [r.event_time_ms for r in records]
    assert all(START <= t < END for t in times)
    ordinary = [r.event_time_ms for r in records if json.loads(r.value)["browser_info"] != "Other"]
    assert ordinary == sorted(ordinary)


def test_events_are_plausible(events):
    failures = sum(not e["success"] for e in events) / len(events)
    assert 0.02 < failures < 0.10  # a few percent, attacks included
    browsers = Counter(e["browser_info"] for e in events)
    assert browsers.most_common(1)[0][0] == "Chrome"
    assert set(browsers) <= {
        "Chrome",
        "Safari",
        "Edge",
        "Firefox",
        "Samsung Internet",
        "Opera",
        "Other",
    }
    assert all((e["failure_reason"] is None) == e["success"] for e in events)
    # Heavy-tailed activity: the busiest user logs in far more than the median user.
    per_user = sorted(Counter(e["user_id"] for e in events).values())
    assert per_user[-1] > 10 * per_user[len(per_user) // 2]
    # Users keep their country.
    countries = {}
    for e in events:
        if e["browser_info"] != "Other" and e["user_agent"] != "python-requests/2.32.3":
            countries.setdefault(e["user_id"], set()).add(e["country"])
    assert sum(len(c) == 1 for c in countries.values()) / len(countries) > 0.9


def test_weekday_and_hour_rhythm(events):
    moments = [datetime.fromisoformat(e["timestamp"]) for e in events]
    by_weekday = Counter(m.weekday() for m in moments)
    assert by_weekday[1] > 1.3 * by_weekday[6]  # Tuesday busier than Sunday
    by_hour = Counter(m.hour for m in moments)
    assert by_hour[9] > 4 * by_hour[3]  # morning peak vs. the middle of the night


def test_later_months_are_busier_growth(events):
    months = Counter(e["timestamp"][:7] for e in events)
    assert months["2025-10"] > months["2024-10"]


def test_credential_stuffing_bursts_come_from_one_address():
    generator = LoginEventGenerator(seed=2, users=100, attack_probability=0.01)
    events = [json.loads(r.value) for r in generator.backfill(START, END, 5_000)]
    scripted = [e for e in events if e["browser_info"] == "Other"]
    assert scripted, "expected at least one burst"
    by_ip = Counter(e["ip_address"] for e in scripted)
    assert by_ip.most_common(1)[0][1] >= 20
    assert sum(not e["success"] for e in scripted) / len(scripted) > 0.95


def test_live_events_use_the_clock():
    ticks = iter([1_700_000_000.123, 1_700_000_000.5, 1_700_000_001.0] * 10)
    generator = LoginEventGenerator(seed=1, users=20, attack_probability=0.0)
    stream = generator.live(clock=lambda: next(ticks))
    first = json.loads(next(stream).value)
    assert first["timestamp"] == "2023-11-14T22:13:20.123Z"


@pytest.mark.parametrize(
    "epoch_ms",
    [0, 951_782_399_999, 951_782_400_000, 1_709_251_199_999, 1_709_251_200_000, 4_102_444_799_999],
)
def test_timestamp_format_matches_datetime(epoch_ms):
    moment = datetime.fromtimestamp(epoch_ms / 1000, timezone.utc)
    expected = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"
    assert format_timestamp(epoch_ms) == expected
    assert re.fullmatch(SCHEMA["properties"]["timestamp"]["pattern"], format_timestamp(epoch_ms))


def test_fast_uuid_equals_the_uuid_module():
    for seed in range(200):
        a, b = random.Random(seed), random.Random(seed)
        assert uuid4_from(a) == str(uuid.UUID(int=b.getrandbits(128), version=4))


def test_backfill_timestamps_rejects_an_empty_range():
    with pytest.raises(ValueError, match="--end must be after --start"):
        list(backfill_timestamps(END, START, 10, random.Random(0)))


# --- Attack bursts at the edges of time, for `make mutation` (docs/TESTING.md) ---------------

ATTACK_AGENTS = set(ATTACK_USER_AGENTS)


def test_a_burst_at_the_end_of_a_backfill_stays_inside_the_range():
    generator = LoginEventGenerator(seed=1, users=20, attack_probability=1.0)
    start, end = START, START + 1_000  # a burst spans seconds: it must be cut at the end
    times = [r.event_time_ms for r in generator.backfill(start, end, 60)]
    assert all(start <= t < end for t in times)
    assert max(times) == end - 1


def test_live_bursts_are_stamped_with_the_clock():
    ticks = iter(range(1_700_000_000, 1_700_000_200))
    generator = LoginEventGenerator(seed=4, users=20, attack_probability=1.0)
    stream = generator.live(clock=lambda: next(ticks) + 0.25)
    records = [next(stream) for _ in range(30)]
    events = [json.loads(r.value) for r in records]
    assert all(e["user_agent"] in ATTACK_AGENTS for e in events)
    # Every event, burst or not, takes the clock's time when it is made.
    assert [r.event_time_ms % 1000 for r in records] == [250] * 30
    assert all(1_700_000_000_250 <= r.event_time_ms < 1_700_000_200_000 for r in records)
    times = [r.event_time_ms for r in records]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_attack_events_name_their_browser_by_the_user_agent():
    generator = LoginEventGenerator(seed=2, users=50, attack_probability=1.0)
    events = [json.loads(r.value) for r in generator.backfill(START, END, 3_000)]
    seen = set()
    for e in events:
        assert e["user_agent"] in ATTACK_AGENTS
        expected = "Chrome" if e["user_agent"].startswith("Mozilla/") else "Other"
        assert e["browser_info"] == expected
        assert (e["device_type"], e["auth_method"]) == ("desktop", "password")
        seen.add(e["browser_info"])
    assert seen == {"Chrome", "Other"}


def test_users_are_drawn_in_proportion_to_their_activity():
    generator = LoginEventGenerator(seed=8, users=5, attack_probability=0.0)
    activity = {u.user_id: u.activity for u in generator.population}
    total = sum(activity.values())
    events = [json.loads(r.value) for r in generator.backfill(START, END, 20_000)]
    drawn = Counter(e["user_id"] for e in events)
    for user_id, weight in activity.items():
        # 20,000 draws: the share's standard deviation is below 0.4 percentage points.
        assert drawn[user_id] / len(events) == pytest.approx(weight / total, abs=0.02), user_id


def test_failed_logins_give_every_reason_by_its_weight():
    generator = LoginEventGenerator(seed=9, users=20, failure_rate=1.0, attack_probability=0.0)
    events = [json.loads(r.value) for r in generator.backfill(START, END, 20_000)]
    assert not any(e["success"] for e in events)
    reasons = Counter(e["failure_reason"] for e in events)
    expected = {
        "invalid_password": 0.70,
        "mfa_failed": 0.12,
        "expired_password": 0.08,
        "account_locked": 0.06,
        "unknown_user": 0.04,
    }
    assert set(reasons) == set(expected)
    for reason, share in expected.items():
        assert reasons[reason] / len(events) == pytest.approx(share, abs=0.015), reason


def test_a_burst_is_one_address_trying_accounts_every_50_to_1500_ms():
    # At most 150 attempts per burst: 20 events from an attack that starts at once are one burst.
    generator = LoginEventGenerator(seed=6, users=20, attack_probability=1.0)
    records = list(generator.backfill(START, END, 20))
    events = [json.loads(r.value) for r in records]
    assert len({e["ip_address"] for e in events}) == 1
    gaps = [b.event_time_ms - a.event_time_ms for a, b in pairwise(records)]
    assert all(50 <= gap <= 1_500 for gap in gaps), gaps


def test_every_user_id_is_lower_case_and_made_up_ones_end_in_a_number():
    generator = LoginEventGenerator(seed=3, users=50, attack_probability=0.05)
    events = [json.loads(r.value) for r in generator.backfill(START, END, 5_000)]
    unknown = {e["user_id"] for e in events if e["failure_reason"] == "unknown_user"}
    made_up = unknown - {u.user_id for u in generator.population}
    assert made_up, "expected made-up accounts"
    assert all(re.search(r"[0-9]$", user_id) for user_id in made_up), made_up
    assert all(e["user_id"] == e["user_id"].lower() for e in events)


def test_the_default_seed_is_0_and_rates_are_checked_at_both_ends():
    def first(generator):
        return [r.value for r in generator.backfill(START, END, 50)]

    assert first(LoginEventGenerator(users=20)) == first(LoginEventGenerator(seed=0, users=20))
    for rate in (0.0, 1.0):
        LoginEventGenerator(users=5, failure_rate=rate, attack_probability=rate)
    for rate in (-0.01, 1.01):
        with pytest.raises(ValueError, match=r"^failure_rate must be between 0 and 1$"):
            LoginEventGenerator(users=5, failure_rate=rate)
        with pytest.raises(ValueError, match=r"^attack_probability must be between 0 and 1$"):
            LoginEventGenerator(users=5, attack_probability=rate)


def bursts_in(values: list[dict], attack_ips: set[str]) -> list[dict]:
    """The bursts of an event sequence, found from the events alone: runs of consecutive
    events from one attack address (a burst takes the place of the events after it)."""
    runs: list[list[dict]] = []
    for i, event in enumerate(values):
        if event["ip_address"] not in attack_ips:
            continue
        if (
            runs
            and runs[-1][-1] is values[i - 1]
            and values[i - 1]["ip_address"] == event["ip_address"]
        ):
            runs[-1].append(event)
        else:
            runs.append([event])
    return [
        {
            "address": run[0]["ip_address"],
            "first_event_time": run[0]["timestamp"],
            "last_event_time": run[-1]["timestamp"],
            "attempts": len(run),
            "failed": sum(not e["success"] for e in run),
            "accounts": len({e["user_id"] for e in run}),
        }
        for run in runs
    ]


@pytest.mark.parametrize("count", [30_000, 30_070])
def test_every_burst_is_reported_once_as_its_events_show_it(count):
    """Also a burst at the very end of the backfill (30,000 events end on a burst's event with
    this seed): a burst cut short by the end is told with the events it has."""
    generator = LoginEventGenerator(seed=3, users=300, attack_probability=0.002)
    reported: list[dict] = []
    generator.on_burst = lambda burst: reported.append(burst.as_json())
    values = [json.loads(r.value) for r in generator.backfill(START, END, count)]
    assert len(reported) >= 20
    assert reported == bursts_in(values, set(generator._attack_ips))
    assert all(1 <= b["attempts"] <= 150 and b["failed"] <= b["attempts"] for b in reported)
