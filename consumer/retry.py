"""Retrying an idempotent step while something it needs is briefly away, for a bounded time.

The job writes each batch's tables to the database in one transaction keyed by batch id, so
trying the same transaction again is safe. What may be retried (``transient``) and what a
failure means stay with the caller; this module only decides when to try again and when
to give up, on a clock it is given, so tests run it without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pauses between attempts: ``first_s``, doubling up to ``max_s``, for ``timeout_s`` in all.

    Doubling keeps a long outage from being hammered; the cap keeps the wait after the
    dependency is back short (at most ``max_s``).
    """

    timeout_s: float
    first_s: float = 0.5
    max_s: float = 5.0

    def pause(self, failed_attempts: int, elapsed_s: float) -> float | None:
        """The pause before the next attempt, or None once ``timeout_s`` has passed.

        The last pause ends at the bound, so one attempt is always made at the bound.
        """
        remaining = self.timeout_s - elapsed_s
        if remaining <= 0:
            return None
        return min(self.first_s * 2 ** (failed_attempts - 1), self.max_s, remaining)


class RetriesExhaustedError(Exception):
    """Every attempt failed for ``elapsed_s`` seconds; ``last`` is the last failure."""

    def __init__(self, last: BaseException, attempts: int, elapsed_s: float) -> None:
        super().__init__(f"{attempts} attempts in {elapsed_s:.1f} s: {last}")
        self.last = last
        self.attempts = attempts
        self.elapsed_s = elapsed_s


@dataclass(frozen=True)
class Outcome:
    """What a successful :func:`call_with_retries` returned, after how many failures."""

    value: object
    failed_attempts: int
    elapsed_s: float


def call_with_retries(
    action: Callable[[], T],
    transient: Callable[[BaseException], bool],
    backoff: Backoff,
    on_failure: Callable[[BaseException, int], None] = lambda _exc, _attempt: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Outcome:
    """Run ``action`` until it succeeds, retrying failures that are ``transient``.

    ``on_failure(exc, n)`` is told of the n-th failure before its pause (to say so, or to
    drop broken connections). A failure that is not transient is raised as it is; a
    transient one after ``backoff.timeout_s`` becomes :class:`RetriesExhaustedError`.
    """
    started = clock()
    failed = 0
    while True:
        try:
            value = action()
        except Exception as exc:
            if not transient(exc):
                raise
            failed += 1
            elapsed = clock() - started
            pause = backoff.pause(failed, elapsed)
            if pause is None:
                raise RetriesExhaustedError(exc, failed, elapsed) from exc
            on_failure(exc, failed)
            sleep(pause)
        else:
            return Outcome(value, failed, clock() - started)
