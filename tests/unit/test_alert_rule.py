"""The alert rule's own checks (contract/alerts.py)."""

from __future__ import annotations

import pytest

from contract.alerts import AlertRule


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
