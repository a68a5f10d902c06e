"""What the producer shows while it runs: a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import io
import logging

from producer import progress as progress_module
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


class Clock:
    """``time.monotonic`` under the test's control."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def lines_of(progress, clock, caplog, *steps):
    """Each step: (monotonic time, DeliveryStats); returns the log lines written."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="producer"):
        for now, stats in steps:
            clock.now = now
            progress.update(stats)
    return [r.getMessage() for r in caplog.records]


def test_log_lines_every_interval_with_exact_rate_share_and_eta(monkeypatch, caplog):
    clock = Clock(100.0)
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    progress = LogProgress(total=1000, interval_s=5.0)
    lines = lines_of(
        progress,
        clock,
        caplog,
        (104.9, DeliveryStats(sent=400)),  # before the first interval: nothing
        (105.0, DeliveryStats(sent=500, acknowledged=480, failed=1)),  # on the dot
        (109.9, DeliveryStats(sent=900)),
        (110.0, DeliveryStats(sent=1500, acknowledged=1200)),
    )
    assert lines == [
        "500 sent, 480 acknowledged, 1 failed, 100 events/s, 50.0% of 1,000, ETA 5s",
        "1,500 sent, 1,200 acknowledged, 0 failed, 150 events/s, 150.0% of 1,000, ETA 0s",
    ]


def test_a_slow_producer_gets_a_long_eta_and_a_finished_one_none(monkeypatch, caplog):
    clock = Clock(0.0)
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    progress = LogProgress(total=10, interval_s=0.5)
    lines = lines_of(
        progress,
        clock,
        caplog,
        (0.5, DeliveryStats(sent=1)),  # 2 events/s: 9 left take 4.5 s
        (20.0, DeliveryStats(sent=10)),  # 0.5 events/s, nothing left
    )
    assert lines == [
        "1 sent, 0 acknowledged, 0 failed, 2 events/s, 10.0% of 10, ETA 4s",
        "10 sent, 0 acknowledged, 0 failed, 0 events/s, 100.0% of 10, ETA 0s",
    ]


def test_no_time_elapsed_means_no_rate_and_no_eta(monkeypatch, caplog):
    clock = Clock(7.0)
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    progress = LogProgress(total=10, interval_s=0.0)
    lines = lines_of(progress, clock, caplog, (7.0, DeliveryStats(sent=3)))
    assert lines == ["3 sent, 0 acknowledged, 0 failed, 0 events/s, 30.0% of 10, ETA infs"]
    unbounded = LogProgress(total=None, interval_s=0.0)
    lines = lines_of(unbounded, clock, caplog, (9.0, DeliveryStats(sent=3)))
    assert lines == ["3 sent, 0 acknowledged, 0 failed, 2 events/s"]


def test_the_bar_shows_acknowledgements_at_its_next_redraw_not_with_one_of_its_own():
    terminal = Terminal()
    bar = make_progress("bar", 1000, stream=terminal)
    bar.update(DeliveryStats(sent=250, acknowledged=200))
    assert "acked=" not in terminal.getvalue()  # no extra redraw per update
    bar.close(DeliveryStats(sent=1000, acknowledged=1000))
    assert "acked=1000" in terminal.getvalue()


def test_the_bar_is_named_follows_the_terminal_width_and_redraws_four_times_a_second():
    terminal = Terminal()
    bar = make_progress("bar", 10, stream=terminal)
    assert terminal.getvalue().lstrip("\r").startswith("producing:")
    assert callable(bar._bar.dynamic_ncols)  # tqdm measures the terminal on every redraw
    assert bar._bar.mininterval == 0.25


def test_log_mode_keeps_the_total_and_the_interval(monkeypatch, caplog):
    clock = Clock(50.0)
    monkeypatch.setattr(progress_module.time, "monotonic", clock)
    progress = make_progress("log", 10, stream=io.StringIO(), interval_s=2.0)
    lines = lines_of(
        progress,
        clock,
        caplog,
        (51.9, DeliveryStats(sent=1)),
        (52.0, DeliveryStats(sent=4)),
    )
    assert lines == ["4 sent, 0 acknowledged, 0 failed, 2 events/s, 40.0% of 10, ETA 3s"]


def test_pending_records_are_those_neither_acknowledged_nor_failed():
    assert DeliveryStats(sent=10, acknowledged=6, failed=3).pending == 1
    assert DeliveryStats().pending == 0
