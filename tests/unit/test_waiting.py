"""What a long wait prints (services/waiting.py), on a fake clock: a first line, a progress
line only after a quiet spell, none while another program talks, and how long it took."""

from __future__ import annotations

import io

from services.waiting import Waiting


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def waiting(stream: io.StringIO, clock: Clock, **kwargs: object) -> Waiting:
    # every_s long enough that the real thread never reaches a tick while the test runs
    return Waiting("Kafka to answer", stream=stream, every_s=5, clock=clock, **kwargs)


def test_in_a_log_a_line_per_quiet_spell_and_the_time_it_took():
    log, clock = io.StringIO(), Clock()
    with waiting(log, clock) as wait:
        clock.now += 4.9
        wait.tick()  # not yet quiet for 5 s
        clock.now += 0.1
        wait.tick()
        clock.now += 3
        wait.tick()  # 3 s after the last line
        clock.now += 2
        wait.tick()
        clock.now += 1.25
    assert log.getvalue() == (
        "    waiting for Kafka to answer ...\n"
        "    waiting for Kafka to answer: 5 s\n"
        "    waiting for Kafka to answer: 10 s\n"
        "    Kafka to answer: ready after 11.2 s\n"
    )


def test_another_programs_lines_count_as_news():
    log, clock = io.StringIO(), Clock()
    with waiting(log, clock, closing=False) as wait:
        clock.now += 4
        wait.say("Batch 0: 12 records")
        clock.now += 4
        wait.tick()  # 4 s after the job's line: quiet, not silent
        clock.now += 1
        wait.tick()
    assert log.getvalue() == (
        "    waiting for Kafka to answer ...\n"
        "Batch 0: 12 records\n"
        "    waiting for Kafka to answer: 9 s\n"
    )


def test_on_a_terminal_the_progress_line_is_rewritten_then_replaced():
    screen, clock = Terminal(), Clock()
    with waiting(screen, clock, closing=False) as wait:
        clock.now += 5
        wait.tick()
        clock.now += 1
        wait.tick()
        wait.say("Batch 0")
    assert screen.getvalue() == (
        "    waiting for Kafka to answer ...\n"
        "    waiting for Kafka to answer: 5 s"
        "\r\x1b[K    waiting for Kafka to answer: 6 s"
        "\r\x1b[KBatch 0\n"
    )


def test_an_error_ends_the_terminal_line_and_says_no_ready():
    screen, clock = Terminal(), Clock()
    try:
        with waiting(screen, clock) as wait:
            clock.now += 7
            wait.tick()
            raise RuntimeError("broker exited")
    except RuntimeError:
        pass
    assert screen.getvalue().endswith("waiting for Kafka to answer: 7 s\n")
    assert "ready" not in screen.getvalue()
