"""When logins happen: hour-of-day and weekday weights, growth, and how a backfill's events
are handed out to the hours of its range. Expectations come from the calendar
(``datetime.weekday()``), not from the epoch arithmetic under test."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from producer.rhythm import (
    HOUR_MS,
    HOURLY_PROFILE,
    WEEKDAY_PROFILE,
    _hour_slices,
    backfill_timestamps,
    hour_weight,
)

YEAR_MS = 8_766 * HOUR_MS  # 365.25 days


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


def expected_weight(hour_start_ms: int, range_start_ms: int) -> float:
    moment = datetime.fromtimestamp(hour_start_ms / 1000, timezone.utc)
    growth = 1.35 ** ((hour_start_ms - range_start_ms) / YEAR_MS)
    return HOURLY_PROFILE[moment.hour] * WEEKDAY_PROFILE[moment.weekday()] * growth


class Midpoint:
    """An rng whose every draw is 0.5: each event lands in the middle of its slice."""

    def random(self) -> float:
        return 0.5


def test_weights_of_a_monday_morning_and_a_sunday_night():
    assert datetime(2024, 1, 1).weekday() == 0  # a Monday
    monday_9 = at(2024, 1, 1, 9)
    assert hour_weight(monday_9, monday_9) == pytest.approx(1.25 * 1.05)
    sunday_3 = at(2024, 1, 7, 3)
    assert hour_weight(sunday_3, sunday_3) == pytest.approx(0.12 * 0.60)


@pytest.mark.parametrize("day", range(1, 15))  # two weeks: every weekday twice
def test_every_hour_of_every_weekday_has_its_weight(day):
    for hour in range(24):
        start = at(2024, 1, day, hour)
        assert hour_weight(start, start) == pytest.approx(expected_weight(start, start)), hour


def test_growth_is_35_percent_a_year():
    hour = at(2025, 6, 2, 12)
    base = hour_weight(hour, hour)
    assert hour_weight(hour, hour - YEAR_MS) == pytest.approx(base * 1.35)
    assert hour_weight(hour, hour - 2 * YEAR_MS) == pytest.approx(base * 1.35**2)
    assert hour_weight(hour, hour + YEAR_MS) == pytest.approx(base / 1.35)


def test_partial_hours_are_weighted_by_their_length():
    start, end = at(2024, 1, 1, 10, 30), at(2024, 1, 1, 12, 15)
    slices = list(_hour_slices(start, end))
    assert [(s, e) for s, e, _ in slices] == [
        (start, at(2024, 1, 1, 11)),
        (at(2024, 1, 1, 11), at(2024, 1, 1, 12)),
        (at(2024, 1, 1, 12), end),
    ]
    assert [w for _, _, w in slices] == pytest.approx(
        [
            0.5 * expected_weight(at(2024, 1, 1, 10), start),
            1.0 * expected_weight(at(2024, 1, 1, 11), start),
            0.25 * expected_weight(at(2024, 1, 1, 12), start),
        ]
    )


def allocation(start: int, end: int, count: int) -> list[int]:
    """Events per clock hour: each hour gets its share of the cumulative weight, rounded."""
    hours = range(start - start % HOUR_MS, end, HOUR_MS)
    weights = [
        expected_weight(h, start) * (min(h + HOUR_MS, end) - max(h, start)) / HOUR_MS for h in hours
    ]
    total, cumulative, handed_out, shares = sum(weights), 0.0, 0, []
    for weight in weights:
        cumulative += weight
        due = min(count, round(count * cumulative / total))
        shares.append(due - handed_out)
        handed_out = due
    shares[-1] += count - handed_out
    return shares


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [
        (at(2024, 1, 1, 0), at(2024, 1, 1, 2), 1_000),
        (at(2024, 1, 1, 0, 20), at(2024, 1, 2, 0, 0), 24),  # about one event an hour
        (at(2024, 1, 6, 0), at(2024, 1, 8, 0), 3),  # most hours get nothing
        (at(2024, 1, 1, 0), at(2026, 1, 1, 0), 5_000),
    ],
)
def test_events_are_handed_out_to_the_hours_by_weight(start, end, count):
    times = list(backfill_timestamps(start, end, count, Midpoint()))
    assert len(times) == count
    assert times == sorted(times)
    assert all(start <= t < end for t in times)
    per_hour: dict[int, int] = {}
    for t in times:
        per_hour[t - t % HOUR_MS] = per_hour.get(t - t % HOUR_MS, 0) + 1
    hours = range(start - start % HOUR_MS, end, HOUR_MS)
    assert [per_hour.get(h, 0) for h in hours] == allocation(start, end, count)


def test_each_event_lands_where_the_rng_puts_it_in_its_slice():
    start = at(2024, 1, 1, 9)
    times = list(backfill_timestamps(start, start + HOUR_MS, 3, Midpoint()))
    assert times == [start + HOUR_MS // 2] * 3
    partial = at(2024, 1, 1, 9, 30)
    assert list(backfill_timestamps(partial, start + HOUR_MS, 1, Midpoint())) == [
        partial + HOUR_MS // 4
    ]


def test_no_events_and_an_empty_range():
    assert list(backfill_timestamps(0, HOUR_MS, 0, Midpoint())) == []
    for end in (0, -1):
        with pytest.raises(ValueError) as refused:
            list(backfill_timestamps(0, end, 10, Midpoint()))
        assert str(refused.value) == "the backfill range is empty: --end must be after --start"
