"""The bounded retry of an idempotent step (consumer/retry.py), on a clock the test drives."""

from __future__ import annotations

import pytest

from consumer.retry import Backoff, RetriesExhaustedError, call_with_retries


def test_pauses_double_up_to_the_cap_and_the_last_one_ends_at_the_bound():
    backoff = Backoff(timeout_s=10, first_s=0.5, max_s=3)
    assert [backoff.pause(n, 0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3, 3]
    assert backoff.pause(4, 8.5) == 1.5  # only what is left of the bound
    assert backoff.pause(1, 10) is None
    assert backoff.pause(1, 12) is None
    assert Backoff(timeout_s=0).pause(1, 0) is None  # 0: no retry at all


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def flaky(failures: int, error: Exception, clock: FakeClock, attempt_s: float = 0.0):
    calls = []

    def action() -> str:
        calls.append(clock.now)
        clock.now += attempt_s
        if len(calls) <= failures:
            raise error
        return "written"

    return action, calls


def test_a_transient_failure_is_retried_until_it_succeeds():
    clock = FakeClock()
    action, calls = flaky(3, TimeoutError("locked"), clock, attempt_s=1)
    told = []
    outcome = call_with_retries(
        action,
        lambda exc: isinstance(exc, TimeoutError),
        Backoff(60, first_s=0.5, max_s=5),
        lambda exc, n: told.append((str(exc), n)),
        clock=clock,
        sleep=clock.sleep,
    )
    assert outcome.value == "written"
    assert outcome.failed_attempts == 3
    assert clock.slept == [0.5, 1.0, 2.0]
    assert outcome.elapsed_s == 4 * 1 + 0.5 + 1.0 + 2.0
    assert told == [("locked", 1), ("locked", 2), ("locked", 3)]
    assert len(calls) == 4


def test_past_the_bound_the_last_failure_is_raised_with_the_time_spent():
    clock = FakeClock()
    action, calls = flaky(1000, TimeoutError("still locked"), clock, attempt_s=10)
    with pytest.raises(RetriesExhaustedError) as raised:
        call_with_retries(
            action, lambda exc: True, Backoff(30, max_s=5), clock=clock, sleep=clock.sleep
        )
    assert str(raised.value.last) == "still locked"
    # attempts of 10 s at 0, 10.5 and 21.5 s: the third ends past the 30 s bound
    assert [c - 100 for c in calls] == [0, 10.5, 21.5]
    assert raised.value.attempts == 3
    assert raised.value.elapsed_s == 31.5
    assert isinstance(raised.value.__cause__, TimeoutError)


def test_a_failure_that_is_not_transient_is_raised_at_once():
    clock = FakeClock()
    action, calls = flaky(5, PermissionError("denied"), clock)
    with pytest.raises(PermissionError):
        call_with_retries(
            action,
            lambda exc: isinstance(exc, TimeoutError),
            Backoff(60),
            clock=clock,
            sleep=clock.sleep,
        )
    assert len(calls) == 1 and clock.slept == []


def test_success_at_once_has_no_failures():
    clock = FakeClock()
    outcome = call_with_retries(lambda: 7, lambda exc: True, Backoff(60), clock=clock)
    assert (outcome.value, outcome.failed_attempts, outcome.elapsed_s) == (7, 0, 0)
