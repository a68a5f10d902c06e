"""Every integration test starts Spark the way a user's second start does: with the
connector resolved and Spark's classes recorded (both happen once, on the first start)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.kafka import LocalKafka
from services.spark_submit import prepare_submit, submit_env
from tests.support.kafka import free_port
from tests.support.versions import Versions, newest_versions


@pytest.fixture(scope="session", autouse=True)
def prepared_submit() -> None:
    """``consumer/submit.sh --prepare`` once, so no test's deadline includes the first start's
    one-time work (about half a minute; nothing when it is already done)."""
    prepare_submit()


@dataclass(frozen=True)
class Newest:
    """The official images' Kafka (a local broker of that release) and Spark (.venv-newest)."""

    versions: Versions
    broker: LocalKafka


@pytest.fixture(scope="session")
def newest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newest]:
    versions = newest_versions()
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("kafka-newest"),
        port=free_port(),
        controller_port=free_port(),
        kafka_version=versions.kafka_version,
    )
    broker.start()
    try:
        prepare_submit(submit_env(**versions.job_env))
        yield Newest(versions, broker)
    finally:
        broker.stop()


@pytest.fixture
def restartable_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A broker of one test's own, which the test may pause, kill and restart."""
    broker = LocalKafka(home=tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    yield broker
    if broker.pid() is not None:
        os.kill(broker.pid(), signal.SIGCONT)  # a test that failed while the broker was paused
    broker.stop()
