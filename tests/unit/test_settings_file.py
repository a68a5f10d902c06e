"""Reading `.env` the way Compose does (services/settings.py), and putting a password into a
database URL (contract/tables.py): on small files and URLs written here, so that every field
is checked against a value of its own."""

from __future__ import annotations

import pytest

from contract.tables import url_with_password
from services.settings import load_settings, read_env_file

ENV = """\
KAFKA_VERSION=4.0.1
SPARK_VERSION=4.0.2
SCALA_VERSION=2.13
KAFKA_IMAGE=example/kafka:${KAFKA_VERSION}
SPARK_IMAGE=example/spark:${SPARK_VERSION}
PYTHON_IMAGE=example/python:3.11
KAFKA_HOST_PORT=19092
KAFKA_BOOTSTRAP_SERVERS=localhost:${KAFKA_HOST_PORT}
LOGINS_TOPIC=the-logins
STACK=apache
APACHE_KAFKA_VERSION=4.4.0
APACHE_SPARK_VERSION=4.2.0
APACHE_KAFKA_IMAGE=apache/kafka:${APACHE_KAFKA_VERSION}
APACHE_SPARK_IMAGE=apache/spark:${APACHE_SPARK_VERSION}
EMPTY=
"""


@pytest.fixture
def env_file(tmp_path, monkeypatch):
    for line in ENV.splitlines():
        monkeypatch.delenv(line.split("=")[0], raising=False)
    path = tmp_path / ".env"
    path.write_text(ENV)
    return path


def test_every_setting_comes_from_its_own_variable(env_file):
    settings = load_settings(env_file)
    assert (settings.kafka_version, settings.spark_version, settings.scala_version) == (
        "4.0.1", "4.0.2", "2.13"
    )  # fmt: skip
    assert (settings.kafka_image, settings.spark_image, settings.python_image) == (
        "example/kafka:4.0.1", "example/spark:4.0.2", "example/python:3.11"
    )  # fmt: skip
    assert settings.bootstrap_servers == "localhost:19092"
    assert (settings.topic, settings.stack) == ("the-logins", "apache")


def test_the_environment_wins_also_where_another_value_refers_to_it(env_file, monkeypatch):
    monkeypatch.setenv("KAFKA_HOST_PORT", "29092")
    monkeypatch.setenv("LOGINS_TOPIC", "other")
    env = read_env_file(env_file)
    assert env["KAFKA_HOST_PORT"] == "29092"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "localhost:29092"
    assert env["LOGINS_TOPIC"] == "other"
    assert env["EMPTY"] == ""


def test_a_password_goes_after_the_last_at_sign_of_the_user_part():
    assert url_with_password("postgresql://us@er@db:5432/logins", "pw") == (
        "postgresql://us@er:pw@db:5432/logins"
    )


def test_only_the_authority_is_changed_not_the_path_or_query():
    url = "postgresql+pg8000://job@db:5432/logins/x?next=a://b/c@d"
    assert url_with_password(url, "p/w") == (
        "postgresql+pg8000://job:p%2Fw@db:5432/logins/x?next=a://b/c@d"
    )
    assert url_with_password("postgresql://job@db", "pw") == "postgresql://job:pw@db"


def test_an_at_sign_after_the_host_is_not_taken_for_the_user_part():
    assert url_with_password("postgresql://job@db/a@b/logins", "pw") == (
        "postgresql://job:pw@db/a@b/logins"
    )
