"""The class archive that makes starts faster is recorded by a real run and really used.

``SPARK_SUBMIT_OPTS=-Xshare:on`` makes the JVM refuse to start, instead of quietly going on
without it, when the archive named by ``-XX:SharedArchiveFile`` cannot be mapped: a run
that counts right under it started from the recorded archive.
"""

from __future__ import annotations

import json
import shutil

import pytest

from services.jars import IVY_HOME
from services.spark_submit import prepare_submit, submit_env
from tests.support.jobs import run_job
from tests.support.kafka import produce_raw
from tests.support.truth import expected_monthly

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_recorded_class_archive_is_mapped_and_the_job_counts_right(kafka_broker, topic, tmp_path):
    # A fresh Ivy home, with only the connector's jar list of the shared one (resolved already):
    # the archive is recorded here from scratch.
    ivy = tmp_path / "ivy"
    shutil.copytree(IVY_HOME / "connector-jars", ivy / "connector-jars")
    env = {"SPARK_IVY_DIR": str(ivy), "CONSUMER_CLASS_ARCHIVE": "on"}
    said = prepare_submit(submit_env(**env))
    assert "recording the classes Spark loads, once" in said
    (archive,) = (ivy / "class-archives").glob("spark-*.jsa")
    assert archive.stat().st_size > 10_000_000  # Spark's classes, not an empty file
    assert list(archive.parent.iterdir()) == [archive]  # no failure log

    events = [
        {"event_id": f"cds-{n}", "user_id": f"u{n}", "timestamp": f"2025-0{n % 3 + 1}-15T08:00:00Z",
         "success": n % 2 == 0}
        for n in range(9)
    ]  # fmt: skip
    produce_raw(kafka_broker.bootstrap_servers, topic, [json.dumps(e).encode() for e in events])
    run = run_job(kafka_broker, topic, tmp_path, env={**env, "SPARK_SUBMIT_OPTS": "-Xshare:on"})
    assert f"classes from {archive}" in run.result.stderr
    assert "recording the classes" not in run.result.stderr
    assert run.monthly == expected_monthly(events)
