"""The job's pure DataFrame functions on small DataFrames, in one local SparkSession.

Apart from tests/unit because the session is a JVM of its own: unit tests start
nothing (``make test-unit``), these start Spark but no broker and no job (``make test-transforms``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """A local batch SparkSession for testing the job's pure DataFrame functions."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("transform-tests")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
