"""When logins happen: a daily and weekly rhythm with slow growth, and backfill timestamps.

A backfill must put exactly ``count`` events in ``[start, end)`` and should look like
real traffic. We give every hour a weight (time of day x day of week x growth) and hand
out the events by cumulative weight, so the total is exact, the allocation is
deterministic, and the timestamps come out in order without holding them all in memory.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

HOUR_MS = 3_600_000

# Relative login activity by hour of day (UTC), peaking in the working morning and evening.
HOURLY_PROFILE: tuple[float, ...] = (
    0.25, 0.18, 0.14, 0.12, 0.14, 0.25, 0.50, 0.85,
    1.10, 1.25, 1.20, 1.10, 1.05, 1.10, 1.15, 1.10,
    1.00, 0.95, 1.00, 1.10, 1.05, 0.85, 0.60, 0.40,
)  # fmt: skip

# Relative activity by weekday, Monday first: quieter weekends.
WEEKDAY_PROFILE: tuple[float, ...] = (1.05, 1.10, 1.10, 1.05, 1.00, 0.70, 0.60)

# The simulated service grows by this factor per year, so monthly charts show a trend.
YEARLY_GROWTH = 1.35


def hour_weight(hour_start_ms: int, range_start_ms: int) -> float:
    """How busy the hour starting at ``hour_start_ms`` is, relative to an average hour."""
    hours_since_epoch = hour_start_ms // HOUR_MS
    hour_of_day = hours_since_epoch % 24
    weekday = (hours_since_epoch // 24 + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    years = (hour_start_ms - range_start_ms) / (365.25 * 24 * HOUR_MS)
    return HOURLY_PROFILE[hour_of_day] * WEEKDAY_PROFILE[weekday] * YEARLY_GROWTH**years


def _hour_slices(start_ms: int, end_ms: int) -> Iterator[tuple[int, int, float]]:
    """``(slice_start, slice_end, weight)`` per clock hour, partial hours weighted by length."""
    cursor = start_ms
    while cursor < end_ms:
        hour_start = cursor - cursor % HOUR_MS
        slice_end = min(hour_start + HOUR_MS, end_ms)
        fraction = (slice_end - cursor) / HOUR_MS
        yield cursor, slice_end, hour_weight(hour_start, start_ms) * fraction
        cursor = slice_end


def backfill_timestamps(
    start_ms: int, end_ms: int, count: int, rng: random.Random
) -> Iterator[int]:
    """Exactly ``count`` event times in ``[start_ms, end_ms)``, ascending, following the rhythm."""
    if end_ms <= start_ms:
        raise ValueError("the backfill range is empty: --end must be after --start")
    if count <= 0:
        return
    total = sum(weight for _, _, weight in _hour_slices(start_ms, end_ms))
    cumulative = 0.0
    handed_out = 0
    for slice_start, slice_end, weight in _hour_slices(start_ms, end_ms):
        cumulative += weight
        due = min(count, round(count * cumulative / total))
        in_slice = due - handed_out
        if in_slice <= 0:
            continue
        handed_out = due
        span = slice_end - slice_start
        yield from sorted(slice_start + int(rng.random() * span) for _ in range(in_slice))
    # Floating point may leave the last event or two unassigned; give them the final slice.
    for _ in range(count - handed_out):
        yield end_ms - 1
