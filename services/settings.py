"""Versions and default settings, read from the project's ``.env``.

``.env`` is the single source of truth shared with Docker Compose and the Makefile. Values
set in the process environment win, as they do for Compose, so
``KAFKA_VERSION=4.0.0 make local-up`` and ``SPARK_IMAGE=... make up`` behave alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dotenv.main import DotEnv

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = PROJECT_ROOT / ".env"
# Everything the tooling downloads or runs lives under these ignored folders.
CACHE_DIR = Path(os.environ.get("PIPELINE_CACHE_DIR", PROJECT_ROOT / ".cache"))
LOCAL_DIR = Path(os.environ.get("PIPELINE_LOCAL_DIR", PROJECT_ROOT / ".local"))


# The Docker stack's image families (STACK in .env) and the variables naming each one's
# versions and images: (Kafka version, Spark version, Kafka image, Spark image).
FAMILY_VARIABLES = {
    "bitnami": ("KAFKA_VERSION", "SPARK_VERSION", "KAFKA_IMAGE", "SPARK_IMAGE"),
    "apache": (
        "APACHE_KAFKA_VERSION",
        "APACHE_SPARK_VERSION",
        "APACHE_KAFKA_IMAGE",
        "APACHE_SPARK_IMAGE",
    ),
}
# The local path (make demo, make local-up, make job, the integration suite: pyspark in .venv,
# Kafka's jars) runs the Bitnami family's versions, so that `make demo` and `make up` count
# with the same Spark; the official images' newer versions run in .venv-newest.
LOCAL_FAMILY = "bitnami"
NEWEST_FAMILY = "apache"


@dataclass(frozen=True)
class Family:
    """One image family of the Docker stack, and the Kafka and Spark versions it runs."""

    name: str
    kafka_version: str
    spark_version: str
    kafka_image: str
    spark_image: str


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
    stack: str  # the family `make up` runs (STACK)
    families: tuple[Family, ...]

    @property
    def spark_kafka_connector(self) -> str:
        """Maven coordinates of Spark's Kafka source for this Spark and Scala."""
        return self.connector_for(self.spark_version)

    def connector_for(self, spark_version: str) -> str:
        """Spark's Kafka source for ``spark_version``: it must match Spark exactly."""
        return f"org.apache.spark:spark-sql-kafka-0-10_{self.scala_version}:{spark_version}"

    def family(self, name: str) -> Family:
        for family in self.families:
            if family.name == name:
                return family
        raise ValueError(f"STACK must be one of {', '.join(FAMILY_VARIABLES)}, not {name!r}")


def read_env_file(path: Path = ENV_FILE) -> dict[str, str]:
    """``.env`` with ``${VAR}`` references expanded, the environment winning, as in Compose.

    A variable set in the environment replaces the file's value, also where another value
    refers to it: ``KAFKA_HOST_PORT=19092`` moves ``KAFKA_BOOTSTRAP_SERVERS`` too, and
    ``APACHE_SPARK_VERSION=...`` the image tag built from it.
    """
    parsed = DotEnv(path, interpolate=True, override=False).dict()
    return {k: os.environ.get(k, v or "") for k, v in parsed.items()}


def load_settings(path: Path = ENV_FILE) -> Settings:
    env = read_env_file(path)
    families = tuple(
        Family(name, *(env[variable] for variable in variables))
        for name, variables in FAMILY_VARIABLES.items()
    )
    return Settings(
        kafka_version=env["KAFKA_VERSION"],
        spark_version=env["SPARK_VERSION"],
        scala_version=env["SCALA_VERSION"],
        kafka_image=env["KAFKA_IMAGE"],
        spark_image=env["SPARK_IMAGE"],
        python_image=env["PYTHON_IMAGE"],
        bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        topic=env["LOGINS_TOPIC"],
        stack=env["STACK"],
        families=families,
    )
