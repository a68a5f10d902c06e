"""Every integration test starts Spark the way a user's second start does: with the
connector resolved and Spark's classes recorded (both happen once, on the first start)."""

from __future__ import annotations

import pytest

from services.spark_submit import prepare_submit


@pytest.fixture(scope="session", autouse=True)
def prepared_submit() -> None:
    """``consumer/submit.sh --prepare`` once, so no test's deadline includes the first start's
    one-time work (about half a minute; nothing when it is already done)."""
    prepare_submit()
