"""Versions and default settings, read from the project's ``.env``.

``.env`` is the single source of truth shared with Docker Compose and the Makefile. Values
set in the process environment win, as they do for Compose, so
``KAFKA_VERSION=4.0.0 make local-up`` and ``SPARK_IMAGE=... make up`` behave alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = PROJECT_ROOT / ".env"
# Everything the tooling downloads or runs lives under these ignored folders.
CACHE_DIR = Path(os.environ.get("PIPELINE_CACHE_DIR", PROJECT_ROOT / ".cache"))
LOCAL_DIR = Path(os.environ.get("PIPELINE_LOCAL_DIR", PROJECT_ROOT / ".local"))


@dataclass(frozen=True)
class Settings:
    kafka_version: str
    spark_version: str
    scala_version: str
    kafka_image: str
    spark_image: str
    python_image: str
    bootstrap_servers: str
    topic: str

    @property
    def spark_kafka_connector(self) -> str:
        """Maven coordinates of Spark's Kafka source for this Spark and Scala."""
        return f"org.apache.spark:spark-sql-kafka-0-10_{self.scala_version}:{self.spark_version}"


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``.env`` with ``${VAR}`` references expanded, then overridden by the environment."""
    values = {k: v or "" for k, v in dotenv_values(path, interpolate=True).items()}
    return {k: os.environ.get(k, v) for k, v in values.items()}


def load_settings(path: Path = ENV_FILE) -> Settings:
    env = read_env_file(path)
    return Settings(
        kafka_version=env["KAFKA_VERSION"],
        spark_version=env["SPARK_VERSION"],
        scala_version=env["SCALA_VERSION"],
        kafka_image=env["KAFKA_IMAGE"],
        spark_image=env["SPARK_IMAGE"],
        python_image=env["PYTHON_IMAGE"],
        bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        topic=env["LOGINS_TOPIC"],
    )
