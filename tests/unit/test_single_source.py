"""Versions and settings are defined once (.env); everything else must agree with it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import tomllib

from contract import kafka as contract_kafka
from producer import config as producer_config
from services.settings import ENV_FILE, PROJECT_ROOT, load_settings, read_env_file

SETTINGS = load_settings()


def pinned(requirement_list: list[str], name: str) -> str:
    for requirement in requirement_list:
        match = re.fullmatch(rf"{re.escape(name)}==(\S+)", requirement)
        if match:
            return match.group(1)
    raise AssertionError(f"{name} is not pinned with == in pyproject.toml")


def test_env_file_is_interpolated_and_images_follow_the_versions():
    raw = ENV_FILE.read_text()
    assert "KAFKA_IMAGE=docker.io/bitnamilegacy/kafka:${KAFKA_VERSION}" in raw
    assert "SPARK_IMAGE=docker.io/bitnamilegacy/spark:${SPARK_VERSION}" in raw
    assert SETTINGS.kafka_image.endswith(f":{SETTINGS.kafka_version}")
    assert SETTINGS.spark_image.endswith(f":{SETTINGS.spark_version}")
    assert "APACHE_KAFKA_IMAGE=docker.io/apache/kafka:${APACHE_KAFKA_VERSION}" in raw
    assert (
        "APACHE_SPARK_IMAGE=docker.io/apache/spark:"
        "${APACHE_SPARK_VERSION}-scala${SCALA_VERSION}-java17-python3-ubuntu"
    ) in raw


def test_a_version_from_the_environment_reaches_what_is_built_from_it(monkeypatch):
    """As in Compose: the environment wins also inside other values of .env."""
    monkeypatch.setenv("APACHE_SPARK_VERSION", "9.8.7")
    monkeypatch.setenv("KAFKA_HOST_PORT", "19092")
    settings = load_settings()
    assert settings.family("apache").spark_image.startswith("docker.io/apache/spark:9.8.7-")
    assert settings.bootstrap_servers == "localhost:19092"
    assert settings.family("bitnami").spark_version == SETTINGS.spark_version


def test_compose_reads_the_environment_into_env_values_the_same_way():
    import json

    from tests.support.compose import FAMILY_FILES, compose

    files = [arg for name in FAMILY_FILES["apache"] for arg in ("-f", name)]
    result = compose(*files, "config", "--format", "json", env={"APACHE_KAFKA_VERSION": "9.8.7"})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["services"]["kafka"]["image"] == "docker.io/apache/kafka:9.8.7"


def test_pyspark_pin_equals_the_spark_version():
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    spark_extra = pyproject["project"]["optional-dependencies"]["spark"]
    assert pinned(spark_extra, "pyspark") == SETTINGS.spark_version


def test_installed_pyspark_is_the_pinned_one():
    import pyspark

    assert pyspark.__version__ == SETTINGS.spark_version


def test_code_defaults_equal_the_env_file():
    env = read_env_file()
    for default in (
        producer_config.DEFAULT_BOOTSTRAP_SERVERS,
        contract_kafka.DEFAULT_BOOTSTRAP_SERVERS,
    ):
        assert default == env["KAFKA_BOOTSTRAP_SERVERS"]
    assert producer_config.DEFAULT_TOPIC == contract_kafka.DEFAULT_TOPIC == env["LOGINS_TOPIC"]


def test_connector_coordinates_derive_from_the_versions():
    assert SETTINGS.spark_kafka_connector == (
        f"org.apache.spark:spark-sql-kafka-0-10_{SETTINGS.scala_version}:{SETTINGS.spark_version}"
    )


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [PROJECT_ROOT / name for name in listed if (PROJECT_ROOT / name).is_file()]


def test_versions_and_addresses_are_not_repeated_across_files():
    """Outside .env, a version or the host address may appear only where a test checks it."""
    allowed = {
        # pyproject pins pyspark (checked above); docs quote what the tools printed.
        "pyproject.toml",
        ".env",
        "README.md",
        "contract/kafka.py",  # the defaults' one home, checked above
        "producer/config.py",
    }
    apache = SETTINGS.family("apache")
    needles = {
        f"bitnamilegacy/kafka:{SETTINGS.kafka_version}",
        f"bitnamilegacy/spark:{SETTINGS.spark_version}",
        f"spark-sql-kafka-0-10_{SETTINGS.scala_version}:{SETTINGS.spark_version}",
        f"apache/kafka:{apache.kafka_version}",
        f"apache/spark:{apache.spark_version}",
        f"spark-sql-kafka-0-10_{SETTINGS.scala_version}:{apache.spark_version}",
        f"pyspark=={apache.spark_version}",
        SETTINGS.bootstrap_servers,
    }
    offenders = []
    for path in tracked_files():
        relative = path.relative_to(PROJECT_ROOT).as_posix()
        if relative in allowed or relative.startswith(("docs/", "tests/")):
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{relative}: {needle}" for needle in needles if needle in text]
    assert offenders == []
