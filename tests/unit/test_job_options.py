"""The Spark job's flags and environment variables (parsed without starting Spark)."""

from __future__ import annotations

import pytest

from consumer.monthly_logins import KafkaSecurity, parse_options, parse_trigger


def test_defaults():
    options = parse_options([], {})
    assert options.bootstrap_servers == "localhost:9092"
    assert options.topic == "logins"
    assert options.trigger == "10 seconds"
    assert options.timezone == "UTC"
    assert options.quarantine_dir == ".local/checkpoints/monthly_logins/quarantine"


def test_environment_configures_the_container_and_flags_win():
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:29092",
        "CONSUMER_TRIGGER": "available-now",
        "CONSUMER_OUTPUT_DIR": "/data/out",
        "CONSUMER_TIMEZONE": "Europe/Berlin",
    }
    options = parse_options(["--timezone", "Asia/Tokyo"], env)
    assert options.bootstrap_servers == "kafka:29092"
    assert options.trigger == "available-now"
    assert options.quarantine_dir == "/data/out/rejected"
    assert options.timezone == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("text", "spark"),
    [
        ("10s", "10 seconds"),
        ("1m", "1 minutes"),
        ("2 minutes", "2 minutes"),
        ("500ms", "500 milliseconds"),
    ],
)
def test_trigger_intervals(text, spark):
    assert parse_trigger(text) == spark


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--trigger", "sometimes"], {}, "is not a trigger"),
        ([], {"CONSUMER_TRIGGER": "often"}, "is not a trigger"),
        (["--timezone", "Mars/Olympus"], {}, "is not an IANA time zone"),
        ([], {"CONSUMER_STARTING_OFFSETS": "middle"}, "is not one of earliest, latest"),
        (["--shuffle-partitions", "0"], {}, "must be greater than 0"),
        (["--security-protocol", "SASL_SSL"], {}, "needs --sasl-mechanism"),
    ],
)
def test_usage_errors(argv, env, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_options(argv, env)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_scram_settings_become_kafka_client_properties_and_escape_the_password():
    security = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "alice", 'p"a\\ss', "/ca.pem")
    props = security.client_properties()
    assert props["security.protocol"] == "SASL_SSL"
    assert props["sasl.mechanism"] == "SCRAM-SHA-512"
    assert props["sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="alice" password="p\\"a\\\\ss";'
    )
    assert props["ssl.truststore.type"] == "PEM" and props["ssl.truststore.location"] == "/ca.pem"
    assert 'p"a' not in repr(security)


def test_without_a_time_zone_database_spark_is_left_to_check_the_zone(monkeypatch):
    """Minimal images (Bitnami's, the Docker tests' Spark image) ship no tzdata."""
    from zoneinfo import ZoneInfoNotFoundError

    from consumer import monthly_logins

    def no_database(name):
        raise ZoneInfoNotFoundError(name)

    monkeypatch.setattr(monthly_logins, "ZoneInfo", no_database)
    monkeypatch.setattr(monthly_logins, "available_timezones", set)
    assert parse_options(["--timezone", "UTC"], {}).timezone == "UTC"
    assert parse_options(["--timezone", "Europe/Berlin"], {}).timezone == "Europe/Berlin"
    # With a database, an unknown name is still refused before Spark starts.
    monkeypatch.setattr(monthly_logins, "available_timezones", lambda: {"UTC"})
    with pytest.raises(SystemExit):
        parse_options(["--timezone", "Europe/Berlin"], {})
