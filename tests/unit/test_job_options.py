"""The Spark job's flags and environment variables (parsed without starting Spark)."""

from __future__ import annotations

import os
import re
from argparse import ArgumentTypeError

import pytest

from consumer.options import (
    JobOptions,
    build_parser,
    kafka_retry_options,
    parse_dedupe_window,
    parse_options,
    parse_timezone,
    parse_trigger,
)
from contract.kafka import KafkaSecurity, SecurityError
from contract.tables import PERIODS


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
    ("text", "interval"),
    [
        ("10s", "10 seconds"),
        ("1m", "1 minutes"),
        ("2 minutes", "2 minutes"),
        ("500ms", "500 milliseconds"),
    ],
)
def test_trigger_intervals(text, interval):
    assert parse_trigger(text) == interval


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
    props = security.java_properties()
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

    from consumer import options

    def no_database(name):
        raise ZoneInfoNotFoundError(name)

    monkeypatch.setattr(options, "ZoneInfo", no_database)
    monkeypatch.setattr(options, "available_timezones", set)
    assert parse_options(["--timezone", "UTC"], {}).timezone == "UTC"
    assert parse_options(["--timezone", "Europe/Berlin"], {}).timezone == "Europe/Berlin"
    # With a database, an unknown name is still refused before Spark starts.
    monkeypatch.setattr(options, "available_timezones", lambda: {"UTC"})
    with pytest.raises(SystemExit):
        parse_options(["--timezone", "Europe/Berlin"], {})


# --- Exact values, so `make mutation` (docs/TESTING.md) sees every setting reach its field ---


def test_every_default():
    assert parse_options([], {}) == JobOptions(
        bootstrap_servers="localhost:9092",
        topic="logins",
        starting_offsets="earliest",
        trigger="10 seconds",
        checkpoint_dir=".local/checkpoints/monthly_logins",
        output_dir=None,
        quarantine_dir=".local/checkpoints/monthly_logins/quarantine",
        timezone="UTC",
        max_offsets_per_trigger=None,
        shuffle_partitions=4,
        max_future_seconds=86_400,
        security=KafkaSecurity("PLAINTEXT", None, None, None, None),
        connect_timeout_s=30,
        dedupe_window="24 hours",
        period=PERIODS["month"],
        kafka_retry_timeout_s=60,
        db_retry_timeout_s=60,
    )


EVERY_FLAG = {
    "--bootstrap-servers": ("KAFKA_BOOTSTRAP_SERVERS", "k1:9092,k2:9092"),
    "--topic": ("LOGINS_TOPIC", "t"),
    "--starting-offsets": ("CONSUMER_STARTING_OFFSETS", "latest"),
    "--trigger": ("CONSUMER_TRIGGER", "2h"),
    "--checkpoint-dir": ("CONSUMER_CHECKPOINT_DIR", "/cp"),
    "--output-dir": ("CONSUMER_OUTPUT_DIR", "/out"),
    "--db-url": ("CONSUMER_DB_URL", "postgresql+pg8000://job@db:5432/logins"),
    "--quarantine-dir": ("CONSUMER_QUARANTINE_DIR", "/q"),
    "--timezone": ("CONSUMER_TIMEZONE", "Europe/Berlin"),
    "--period": ("CONSUMER_PERIOD", "week"),
    "--max-offsets-per-trigger": ("CONSUMER_MAX_OFFSETS_PER_TRIGGER", "500"),
    "--shuffle-partitions": ("CONSUMER_SHUFFLE_PARTITIONS", "8"),
    "--max-future": ("CONSUMER_MAX_FUTURE_SECONDS", "60"),
    "--dedupe-window": ("CONSUMER_DEDUPE_WINDOW", "30m"),
    "--connect-timeout": ("CONSUMER_CONNECT_TIMEOUT", "5"),
    "--kafka-retry-timeout": ("CONSUMER_KAFKA_RETRY_TIMEOUT", "90"),
    "--db-retry-timeout": ("CONSUMER_DB_RETRY_TIMEOUT", "0"),
    "--security-protocol": ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    "--sasl-mechanism": ("KAFKA_SASL_MECHANISM", "PLAIN"),
    "--sasl-username": ("KAFKA_SASL_USERNAME", "alice"),
    "--ssl-cafile": ("KAFKA_SSL_CAFILE", "/ca.pem"),
}

EVERY_FIELD = JobOptions(
    bootstrap_servers="k1:9092,k2:9092",
    topic="t",
    starting_offsets="latest",
    trigger="2 hours",
    checkpoint_dir="/cp",
    output_dir="/out",
    quarantine_dir="/q",
    timezone="Europe/Berlin",
    max_offsets_per_trigger=500,
    shuffle_partitions=8,
    max_future_seconds=60,
    security=KafkaSecurity("SASL_SSL", "PLAIN", "alice", "pw", "/ca.pem"),
    connect_timeout_s=5,
    dedupe_window="30 minutes",
    period=PERIODS["week"],
    db_url="postgresql+pg8000://job@db:5432/logins",
    kafka_retry_timeout_s=90,
    db_retry_timeout_s=0,
)


def test_every_flag_reaches_its_field(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    argv = [part for flag, (_, value) in EVERY_FLAG.items() for part in (flag, value)]
    assert parse_options([*argv, "--sasl-password-file", str(secret)], {}) == EVERY_FIELD


def test_every_environment_variable_reaches_its_field(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    env = {**dict(EVERY_FLAG.values()), "KAFKA_SASL_PASSWORD_FILE": str(secret)}
    assert parse_options([], env) == EVERY_FIELD
    env = {**dict(EVERY_FLAG.values()), "KAFKA_SASL_PASSWORD": "pw"}
    assert parse_options([], env) == EVERY_FIELD


def test_the_database_defaults_to_sqlite_in_the_output_dir_and_can_be_turned_off():
    absolute = os.path.abspath("o/logins.db")
    assert parse_options(["--output-dir", "o"], {}).db_url == f"sqlite:///{absolute}"
    assert parse_options([], {}).db_url is None  # no output folder: console only
    for off in ("off", "none", "OFF"):
        assert parse_options(["--output-dir", "o", "--db-url", off], {}).db_url is None
        assert parse_options(["--output-dir", "o"], {"CONSUMER_DB_URL": off}).db_url is None
    url = "sqlite:////tmp/x.db"
    assert parse_options(["--db-url", url], {}).db_url == url  # without --output-dir too


def test_the_database_password_comes_from_its_variable_into_a_url_without_one():
    env = {"CONSUMER_DB_URL": "postgresql+pg8000://job@db:5432/logins"}
    with_password = {**env, "CONSUMER_DB_PASSWORD": "p@ss:w/rd%"}
    assert parse_options([], with_password).db_url == (
        "postgresql+pg8000://job:p%40ss%3Aw%2Frd%25@db:5432/logins"
    )
    assert parse_options([], {**env, "CONSUMER_DB_PASSWORD": ""}).db_url == env["CONSUMER_DB_URL"]
    # No database, no password to put anywhere.
    assert parse_options(["--db-url", "off"], with_password).db_url is None
    assert parse_options([], {"CONSUMER_DB_PASSWORD": "x"}).db_url is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql+pg8000://db:5432/logins", "names no user"),
        ("postgresql+pg8000://job:other@db/logins", "has a password already"),
    ],
)
def test_a_database_password_with_nowhere_to_go_is_a_usage_error(url, reason, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(["--db-url", url], {"CONSUMER_DB_PASSWORD": "secret"})
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"CONSUMER_DB_PASSWORD is set, but the database URL {reason}" in err
    assert "secret" not in err


def test_a_url_with_a_password_is_what_sqlalchemy_reads_back():
    from sqlalchemy.engine import make_url

    from contract.tables import url_with_password

    password = "a b@c:d/e%f?g#h"
    url = make_url(url_with_password("postgresql+pg8000://job@db:5432/logins?x=1", password))
    assert (url.username, url.password, url.host, url.port, url.database) == (
        "job", password, "db", 5432, "logins"
    )  # fmt: skip
    assert url.query == {"x": "1"}


@pytest.mark.parametrize("text", ["logins.db", "/tmp/x.db", "://host/db", "1sql://x", ""])
def test_a_db_url_that_is_not_a_url_is_a_usage_error(text, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_options(["--db-url", text], {})
    assert exit_info.value.code == 2
    assert "is not a SQLAlchemy URL such as sqlite:///" in capsys.readouterr().err


def test_the_quarantine_follows_the_output_dir_unless_given():
    assert parse_options(["--output-dir", "o"], {}).quarantine_dir == "o/rejected"
    argv = ["--output-dir", "o", "--quarantine-dir", "q"]
    assert parse_options(argv, {}).quarantine_dir == "q"
    assert parse_options(["--checkpoint-dir", "c"], {}).quarantine_dir == "c/quarantine"


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("250ms", "250 milliseconds"),
        ("1s", "1 seconds"),
        ("5 sec", "5 seconds"),
        ("1 second", "1 seconds"),
        ("30 seconds", "30 seconds"),
        ("2m", "2 minutes"),
        ("3 min", "3 minutes"),
        ("1 minute", "1 minutes"),
        ("2h", "2 hours"),
        ("1 hour", "1 hours"),
        ("6 HOURS", "6 hours"),
        ("1d", "1 days"),
        ("2 days", "2 days"),
        ("010s", "10 seconds"),
        ("available-now", "available-now"),
        (" Available-Now ", "available-now"),
        ("availablenow", "available-now"),
        ("AvailableNow", "available-now"),
        ("available_now", "available-now"),
        ("AVAILABLE_NOW", "available-now"),
    ],
)
def test_every_trigger_spelling(text, interval):
    assert parse_trigger(text) == interval


@pytest.mark.parametrize("text", ["0", "off", "OFF", "none", " None "])
def test_a_dedupe_window_can_be_switched_off(text):
    assert parse_dedupe_window(text) is None


def test_dedupe_windows_are_intervals():
    assert parse_dedupe_window("24h") == "24 hours"
    assert parse_dedupe_window("1d") == "1 days"
    with pytest.raises(ArgumentTypeError) as refused:
        parse_dedupe_window("available-now")
    assert str(refused.value) == "'available-now' is not an interval such as 24h"


def test_without_a_time_zone_database_empty_and_nul_names_are_still_refused(monkeypatch):
    from zoneinfo import ZoneInfoNotFoundError

    from consumer import options

    def no_database(name):
        raise ZoneInfoNotFoundError(name)

    monkeypatch.setattr(options, "ZoneInfo", no_database)
    monkeypatch.setattr(options, "available_timezones", set)
    for text in (" ", "Europe/\0Berlin"):
        with pytest.raises(ArgumentTypeError) as refused:
            parse_timezone(text)
        assert (
            str(refused.value) == f"{text!r} is not an IANA time zone such as UTC or Europe/Berlin"
        )


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (
            [],
            {"CONSUMER_MAX_FUTURE_SECONDS": "0"},
            "environment variable CONSUMER_MAX_FUTURE_SECONDS='0': '0' must be greater than 0",
        ),
        (
            [],
            {"CONSUMER_MAX_OFFSETS_PER_TRIGGER": "-5"},
            "environment variable CONSUMER_MAX_OFFSETS_PER_TRIGGER='-5': '-5' must be greater "
            "than 0",
        ),
        (
            [],
            {"CONSUMER_SHUFFLE_PARTITIONS": "x"},
            "environment variable CONSUMER_SHUFFLE_PARTITIONS='x': 'x' is not a whole number",
        ),
        (
            [],
            {"CONSUMER_CONNECT_TIMEOUT": "0"},
            "environment variable CONSUMER_CONNECT_TIMEOUT='0': '0' must be greater than 0",
        ),
        (
            [],
            {"CONSUMER_DEDUPE_WINDOW": "available-now"},
            "environment variable CONSUMER_DEDUPE_WINDOW='available-now': 'available-now' is "
            "not an interval such as 24h",
        ),
        (
            [],
            {"CONSUMER_PERIOD": "year"},
            "environment variable CONSUMER_PERIOD='year': 'year' is not one of month, week, day",
        ),
        (
            [],
            {"KAFKA_SECURITY_PROTOCOL": "TLS"},
            "environment variable KAFKA_SECURITY_PROTOCOL='TLS': 'TLS' is not one of PLAINTEXT, "
            "SSL, SASL_PLAINTEXT, "
            "SASL_SSL",
        ),
        (
            ["--sasl-mechanism", "GSSAPI"],
            {},
            "argument --sasl-mechanism: 'GSSAPI' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
        ),
        (
            ["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN"],
            {},
            "SASL_SSL needs --sasl-mechanism and --sasl-username",
        ),
        (
            ["--security-protocol", "SASL_SSL", "--sasl-username", "u"],
            {"KAFKA_SASL_PASSWORD": "pw"},
            "SASL_SSL needs --sasl-mechanism and --sasl-username",
        ),
        (
            ["--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN"],
            {"KAFKA_SASL_USERNAME": "u"},
            "SASL needs a password: set KAFKA_SASL_PASSWORD or --sasl-password-file",
        ),
    ],
)
def test_usage_errors_say_exactly_what_is_wrong(argv, env, line, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_options(argv, env)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"consumer/submit.sh: error: {line}"


def test_an_unreadable_password_file_is_refused(tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(SecurityError, match=rf"^cannot read the SASL password file {missing}: "):
        KafkaSecurity.from_settings("SASL_SSL", "PLAIN", "u", str(missing), None, {})


def test_the_password_file_beats_the_variable_and_an_empty_variable_is_no_password(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("  from-file \n")
    env = {"KAFKA_SASL_PASSWORD": "from-env"}
    security = KafkaSecurity.from_settings("SASL_SSL", "PLAIN", "u", str(secret), None, env)
    assert security == KafkaSecurity("SASL_SSL", "PLAIN", "u", "from-file", None)
    plain = KafkaSecurity.from_settings("PLAINTEXT", None, None, None, None, {})
    assert plain == KafkaSecurity("PLAINTEXT", None, None, None, None)
    empty = KafkaSecurity.from_settings("SSL", None, None, None, "/ca", {"KAFKA_SASL_PASSWORD": ""})
    assert empty.password is None


def test_plain_and_default_mechanisms_become_java_properties():
    plain = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "u", "p").java_properties()
    assert plain == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.jaas.config": "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="u" password="p";',
    }
    # Without a mechanism, user or password (from_settings refuses that) nothing is None.
    bare = KafkaSecurity("SASL_SSL").java_properties()
    assert bare == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="" password="";',
    }
    assert KafkaSecurity().java_properties() == {"security.protocol": "PLAINTEXT"}


def test_the_job_gives_spark_the_servers_and_the_security_properties():
    options = parse_options(["--bootstrap-servers", "k:1", "--ssl-cafile", "/ca.pem"], {})
    assert options.kafka_properties() == {
        "bootstrap.servers": "k:1",
        "security.protocol": "PLAINTEXT",
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": "/ca.pem",
    }


def test_kafka_python_options_of_the_shared_security_settings():
    assert KafkaSecurity("SSL", ssl_cafile="/ca.pem").kafka_python_options() == {
        "security_protocol": "SSL",
        "ssl_cafile": "/ca.pem",
    }
    assert KafkaSecurity("SASL_SSL", "SCRAM-SHA-256", "u", "p").kafka_python_options() == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }


def test_help_shows_the_security_flags_with_metavar_and_variable():
    flat = " ".join(build_parser({}).format_help().split())
    assert flat.startswith("usage: consumer/submit.sh ")
    for flag, metavar, variable in [
        ("--security-protocol", "PROTOCOL", "KAFKA_SECURITY_PROTOCOL"),
        ("--sasl-mechanism", "MECHANISM", "KAFKA_SASL_MECHANISM"),
        ("--sasl-username", "USER", "KAFKA_SASL_USERNAME"),
        ("--sasl-password-file", "FILE", "KAFKA_SASL_PASSWORD_FILE"),
        ("--ssl-cafile", "FILE", "KAFKA_SSL_CAFILE"),
    ]:
        assert re.search(rf"{flag} {metavar} [^\[]+\[{variable}\]", flat), flag
    assert "CA certificate (PEM) for TLS [KAFKA_SSL_CAFILE]" in flat


def test_the_kafka_retry_bound_is_three_waits_of_a_third_by_kafkas_own_clients():
    assert kafka_retry_options(60) == {
        "fetchOffset.numRetries": "3",
        "fetchOffset.retryIntervalMs": "1000",
        "kafkaConsumer.pollTimeoutMs": "20000",
        "kafka.default.api.timeout.ms": "20000",
        "kafka.request.timeout.ms": "20000",
    }
    assert kafka_retry_options(20)["kafka.default.api.timeout.ms"] == "6666"
    assert kafka_retry_options(1)["kafkaConsumer.pollTimeoutMs"] == "1000"  # a floor of 1 s


def test_the_source_gets_the_client_properties_and_the_retry_bound():
    options = parse_options(["--bootstrap-servers", "k:1", "--kafka-retry-timeout", "30"], {})
    assert options.kafka_source_options() == {
        "kafka.bootstrap.servers": "k:1",
        "kafka.security.protocol": "PLAINTEXT",
        **kafka_retry_options(30),
    }


@pytest.mark.parametrize("flag", ["--kafka-retry-timeout", "--db-retry-timeout"])
def test_retry_bounds_are_whole_seconds(flag, capsys):
    with pytest.raises(SystemExit):
        parse_options([flag, "-1"], {})
    assert "must be" in capsys.readouterr().err


def test_the_detector_is_off_unless_a_topic_is_named_and_its_rule_comes_from_flags_or_env():
    assert parse_options(["--output-dir", "out"], {}).alerts_topic is None
    env = {"CONSUMER_ALERTS_TOPIC": "login-alerts", "CONSUMER_ALERT_MIN_FAILED": "25"}
    options = parse_options(["--output-dir", "out", "--alert-min-accounts", "12"], env)
    assert options.alerts_topic == "login-alerts"
    rule = options.alert_rule
    assert (rule.min_failed, rule.min_accounts, rule.window_s, rule.slide_s) == (25, 12, 60, 10)
    assert parse_options(["--alert-window", "5", "--output-dir", "o"], {}).alert_rule.slide_s == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alerts-topic", "a"], "--alerts-topic needs the database"),
        (["--alerts-topic", "a", "--output-dir", "o", "--db-url", "off"],
         "--alerts-topic needs the database"),
        (["--alert-window", "65"], "--alert-window: the slide (10 s) must divide the window"),
        (["--alert-min-failed", "0"], "--alert-min-failed"),
    ],
)  # fmt: skip
def test_a_detector_that_cannot_work_is_a_usage_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_options(argv, {})
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
