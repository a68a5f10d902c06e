"""What the producer shows while it runs: a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

from producer.delivery import DeliveryStats
from producer.progress import BarProgress, LogProgress, NoProgress, make_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_picks_a_bar_on_a_terminal_and_log_lines_in_a_pipe():
    assert isinstance(make_progress("auto", 10, stream=Terminal()), BarProgress)
    assert isinstance(make_progress("auto", 10, stream=io.StringIO()), LogProgress)
    assert isinstance(make_progress("none", 10, stream=Terminal()), NoProgress)


def test_bar_shows_count_rate_eta_and_acknowledgements():
    terminal = Terminal()
    bar = make_progress("bar", 1000, stream=terminal)
    bar.update(DeliveryStats(sent=250, acknowledged=200))
    bar.close(DeliveryStats(sent=1000, acknowledged=1000))
    text = terminal.getvalue()
    assert "1.00k/1.00k" in text
    assert "events/s" in text
    assert "<" in text  # elapsed<remaining
    assert "acked=1000" in text and "failed=0" in text


def test_log_lines_report_rate_share_and_eta(caplog):
    progress = LogProgress(total=1000, interval_s=0.0)
    with caplog.at_level(logging.INFO, logger="producer"):
        progress.update(DeliveryStats(sent=500, acknowledged=480, failed=1))
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("500 sent, 480 acknowledged, 1 failed, ")
    assert "events/s, 50.0% of 1,000, ETA " in line


def test_log_lines_are_rate_limited(caplog):
    progress = LogProgress(total=None, interval_s=3600)
    with caplog.at_level(logging.INFO, logger="producer"):
        for sent in range(100):
            progress.update(DeliveryStats(sent=sent))
    assert caplog.records == []
