"""Shared fixtures: a real local Kafka broker per test session, and helpers to run the job.

Integration tests use the same :class:`services.kafka.LocalKafka` as ``make local-up``,
on free ports and in a temporary folder, so they never touch a broker the user runs.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from services.kafka import LocalKafka
from tests.support.kafka import create_topic, free_port

TEST_JVM_OPTIONS = "-XX:TieredStopAtLevel=1"


def pytest_configure(config: pytest.Config) -> None:
    """Set up what the processes the tests start inherit: Ctrl-C, and the drivers' JIT.

    A process started in the background of a non-interactive shell inherits SIGINT
    ignored (POSIX), as the Docker tests do under ``make test`` (``pytest ... &``), and an
    ignored signal stays ignored across exec: ``make submit`` and its wrapper script would
    never see the tests' Ctrl-C. A handler, unlike "ignored", is reset to the default on exec.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # The tests' Spark drivers (every spark-submit, and pyspark's own gateway) compile with
    # C1 only. Their runs last seconds on a few thousand events, so C2's optimising compiler
    # never pays back the core it takes; the job, its results and the class archive are the
    # same either way (docs/TESTING.md has the measurement). A value set by the caller wins.
    os.environ.setdefault("SPARK_SUBMIT_OPTS", TEST_JVM_OPTIONS)


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """One real broker for the whole session (start-up costs seconds, topics are cheap)."""
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("kafka"),
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def topic(kafka_broker: LocalKafka) -> str:
    """A fresh, empty topic with 3 partitions for one test."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    create_topic(kafka_broker.bootstrap_servers, name)
    return name
