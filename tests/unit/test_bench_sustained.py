"""bench/live.py: how a step of the sustained-rate search is judged from its samples, and
how the minimal job's console table is counted."""

from __future__ import annotations

import pytest

from bench.live import FLAT_SHARE, Step, slope, spread
from bench.spark_runs import console_total


def test_the_slope_is_the_least_squares_one():
    assert slope([(0, 5), (1, 7), (2, 9), (3, 11)]) == pytest.approx(2.0)
    assert slope([(0, 0), (1, 3), (2, 0), (3, 3)]) == pytest.approx(0.6)
    assert slope([(1, 4)]) == 0.0
    assert slope([(2, 1), (2, 5)]) == 0.0


def test_a_step_holds_while_the_lag_grows_by_at_most_its_share_of_the_rate():
    held = Step(rate=10_000, reached=10_000, lag_slope=FLAT_SHARE * 10_000, committed_rate=9_500)
    behind = Step(rate=10_000, reached=9_950, lag_slope=1_200, committed_rate=8_800)
    short = Step(rate=10_000, reached=8_000, lag_slope=0, committed_rate=8_000)
    assert held.flat and not behind.flat
    assert short.producer_short and not held.producer_short
    assert behind.describe() == "10,000/s: lag +1,200/s, committed 8,800/s (growing)"
    assert short.describe().endswith("(producer reached only 8,000/s)")


def test_the_spread_of_repeated_runs_is_a_share_of_their_median_and_survives_zero():
    assert spread([28_000.0, 30_000.0, 32_000.0]) == "spread 13%"
    assert spread([0.0]) == "nothing committed in the median run"
    assert spread([0.0, 0.0, 100.0]) == "nothing committed in the median run"


def test_the_minimal_jobs_count_is_the_sum_of_its_last_table():
    stdout = """-------------------------------------------
Batch: 0
-------------------------------------------
+-------+-----+
|  month|count|
+-------+-----+
|2024-12|    3|
+-------+-----+

-------------------------------------------
Batch: 1
-------------------------------------------
+-------+-----+
|  month|count|
+-------+-----+
|2024-12|    5|
|   NULL|    2|
|2025-01|   10|
+-------+-----+
"""
    assert console_total(stdout) == 17
