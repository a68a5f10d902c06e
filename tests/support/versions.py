"""The two sets of versions the pipeline runs on, for tests that run the job on each.

The local path (.venv, the local broker) runs the Bitnami family's Kafka and Spark; the
official images' newer ones run from .venv-newest (`make venv-newest`, which `make test`
makes) and a local broker of that Kafka release. Tests hand consumer/submit.sh the newest
Spark through PATH and PYSPARK_PYTHON, as a user with that venv active would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from services.settings import NEWEST_FAMILY, load_settings
from services.spark_submit import NEWEST_VENV, installed_pyspark
from tests.support.conditions import unavailable


@dataclass(frozen=True)
class Versions:
    """Which Kafka and Spark a test runs, and the environment submit.sh needs for them."""

    kafka_version: str
    spark_version: str
    job_env: dict[str, str]  # extra environment for consumer/submit.sh (empty: .venv's Spark)


def newest_versions() -> Versions:
    """The official images' versions, with .venv-newest's Spark; skipped (failed under CI)
    without that venv or with another pyspark in it."""
    family = load_settings().family(NEWEST_FAMILY)
    python = NEWEST_VENV / "bin" / "python"
    if not python.exists():
        unavailable(f"{NEWEST_VENV.name} is missing: `make venv-newest` (make test does) makes it")
    installed = installed_pyspark(python)
    if installed != family.spark_version:
        unavailable(
            f"{NEWEST_VENV.name} has pyspark {installed or 'missing'}, not "
            f"{family.spark_version}: run `make venv-newest` again"
        )
    job_env = {
        "PATH": f"{Path(python).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYSPARK_PYTHON": str(python),
        # No class archive for these few starts: recording one costs half a minute of CI.
        "CONSUMER_CLASS_ARCHIVE": "off",
    }
    return Versions(family.kafka_version, family.spark_version, job_env)
