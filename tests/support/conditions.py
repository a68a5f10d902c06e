"""Waiting with a deadline, and skipping (or, under CI, failing) without a tool."""

from __future__ import annotations

import os
import time

import pytest


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.5):
    """Poll ``condition()`` until it returns a truthy value; fail with ``what`` at the deadline."""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)  # poll interval, bounded by the deadline
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


def unavailable(reason: str) -> None:
    """Skip a test whose tool or service is missing; under CI=true that is a failure."""

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)
