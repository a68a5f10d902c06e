"""Producer flags and environment variables, and their usage errors."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from producer import config as producer_config
from producer.config import (
    KafkaConnection,
    ProducerConfig,
    months_before,
    parse_config,
    parse_duration,
    parse_moment,
)

NOW = datetime(2026, 3, 31, 12, 0, tzinfo=timezone.utc)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


def test_defaults_are_live_mode_against_localhost():
    config = parse_config([], env={}, now=NOW)
    assert config.kafka.bootstrap_servers == "localhost:9092"
    assert config.topic == "logins"
    assert not config.backfill and config.count is None and config.rate == 50.0


def test_backfill_range_with_inclusive_end_date():
    config = parse_config(["--start", "2024-01-01", "--end", "2024-12-31"], env={}, now=NOW)
    assert config.start_ms == ms(2024, 1, 1)
    assert config.end_ms == ms(2025, 1, 1)
    assert config.count == 10_000


def test_months_counts_back_from_now_and_clamps_the_day():
    config = parse_config(["--months", "1", "--count", "5"], env={}, now=NOW)
    assert config.start_ms == ms(2026, 2, 28, 12)  # 31 March minus one month
    assert config.end_ms == ms(2026, 3, 31, 12)
    assert months_before(datetime(2024, 3, 31, tzinfo=timezone.utc), 1).day == 29  # leap year


def test_environment_configures_containers_and_flags_win():
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:9094",
        "LOGINS_TOPIC": "t",
        "PRODUCER_RATE": "200",
        "PRODUCER_FOLLOW": "true",
        "PRODUCER_MONTHS": "2",
    }
    config = parse_config(["--rate", "5"], env=env, now=NOW)
    assert config.kafka.bootstrap_servers == "kafka:9094"
    assert config.topic == "t"
    assert config.rate == 5.0
    assert config.follow and config.backfill


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--rate", "0"], {}, "must be greater than 0"),
        (["--count", "many"], {}, "argument --count: 'many' is not a whole number"),
        (["--start", "yesterday"], {}, "is not a date"),
        (["--start", "2024-02-01", "--end", "2024-01-01"], {}, "must be after --start"),
        (["--start", "2024-01-01", "--months", "3"], {}, "either --start or --months"),
        (["--follow"], {}, "--follow continues a backfill"),
        (["--compression", "brotli"], {}, "is not one of"),
        (["--security-protocol", "SASL_PLAINTEXT"], {}, "needs --sasl-mechanism"),
        (
            [
                "--security-protocol",
                "SASL_PLAINTEXT",
                "--sasl-mechanism",
                "SCRAM-SHA-256",
                "--sasl-username",
                "u",
            ],
            {},
            "SASL needs a password",
        ),
        ([], {"PRODUCER_RATE": "fast"}, "environment variable PRODUCER_RATE"),
        (["--no-such-flag"], {}, "unrecognized arguments"),
    ],
)
def test_usage_errors_exit_2_with_a_reason(argv, env, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_config(argv, env=env, now=NOW)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_password_comes_from_file_or_environment_and_is_not_in_repr(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("s3cr3t\n")
    argv = [
        "--security-protocol",
        "SASL_PLAINTEXT",
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        "alice",
        "--sasl-password-file",
        str(secret),
    ]
    config = parse_config(argv, env={}, now=NOW)
    assert config.kafka.sasl_password == "s3cr3t"
    assert "s3cr3t" not in repr(config)
    options = config.kafka.kafka_python_options()
    assert (
        options["sasl_plain_username"] == "alice" and options["sasl_mechanism"] == "SCRAM-SHA-512"
    )
    from_env = parse_config(argv[:-2], env={"KAFKA_SASL_PASSWORD": "x"}, now=NOW)
    assert from_env.kafka.sasl_password == "x"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("5m", 300), ("2h", 7200), ("250ms", 0.25)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_each_run_gets_its_own_seed_unless_one_is_given():
    seeds = {parse_config([], env={}, now=NOW).seed for _ in range(5)}
    assert len(seeds) == 5  # identical default seeds would repeat event ids across runs
    assert parse_config(["--seed", "7"], env={}, now=NOW).seed == 7
    assert parse_config([], env={"PRODUCER_SEED": "9"}, now=NOW).seed == 9


# --- Exact values, so `make mutation` (docs/TESTING.md) sees every setting reach its field ---


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


# Written out rather than taken from the module, so a changed default is noticed.
LIVE_DEFAULTS = ProducerConfig(
    kafka=KafkaConnection(
        bootstrap_servers="localhost:9092",
        security_protocol="PLAINTEXT",
        sasl_mechanism=None,
        sasl_username=None,
        sasl_password=None,
        ssl_cafile=None,
        connect_timeout_s=30.0,
    ),
    topic="logins",
    partitions=3,
    start_ms=None,
    end_ms=None,
    count=None,
    rate=50.0,
    duration_s=None,
    follow=False,
    seed=0,
    users=2_000,
    failure_rate=0.03,
    attack_probability=0.0002,
    client="kafka-python",
    linger_ms=20,
    batch_size=262_144,
    compression="lz4",
    progress="auto",
    progress_interval_s=5.0,
    summary_json=None,
)


def test_every_default_of_live_mode():
    config = parse_config([], env={}, now=NOW)
    assert dataclasses.replace(config, seed=0) == LIVE_DEFAULTS


EVERY_FLAG = {
    "--bootstrap-servers": ("KAFKA_BOOTSTRAP_SERVERS", "a:1,b:2"),
    "--topic": ("LOGINS_TOPIC", "t"),
    "--partitions": ("PRODUCER_PARTITIONS", "6"),
    "--connect-timeout": ("PRODUCER_CONNECT_TIMEOUT", "2m"),
    "--security-protocol": ("KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
    "--sasl-mechanism": ("KAFKA_SASL_MECHANISM", "PLAIN"),
    "--sasl-username": ("KAFKA_SASL_USERNAME", "alice"),
    "--ssl-cafile": ("KAFKA_SSL_CAFILE", "/ca.pem"),
    "--start": ("PRODUCER_START", "2024-01-01"),
    "--end": ("PRODUCER_END", "2024-01-31T12:00:00Z"),
    "--count": ("PRODUCER_COUNT", "7"),
    "--rate": ("PRODUCER_RATE", "2.5"),
    "--duration": ("PRODUCER_DURATION", "90s"),
    "--follow": ("PRODUCER_FOLLOW", "yes"),
    "--seed": ("PRODUCER_SEED", "42"),
    "--users": ("PRODUCER_USERS", "9"),
    "--failure-rate": ("PRODUCER_FAILURE_RATE", "0.5"),
    "--attack-probability": ("PRODUCER_ATTACK_PROBABILITY", "0.25"),
    "--client": ("PRODUCER_CLIENT", "confluent"),
    "--linger-ms": ("PRODUCER_LINGER_MS", "0"),
    "--batch-size": ("PRODUCER_BATCH_SIZE", "1024"),
    "--compression": ("PRODUCER_COMPRESSION", "zstd"),
    "--progress": ("PRODUCER_PROGRESS", "log"),
    "--progress-interval": ("PRODUCER_PROGRESS_INTERVAL", "250ms"),
    "--summary-json": ("PRODUCER_SUMMARY_JSON", "summary.json"),
}

EVERY_FIELD = ProducerConfig(
    kafka=KafkaConnection(
        bootstrap_servers="a:1,b:2",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="alice",
        sasl_password="pw",
        ssl_cafile="/ca.pem",
        connect_timeout_s=120.0,
    ),
    topic="t",
    partitions=6,
    start_ms=ms(2024, 1, 1),
    end_ms=ms(2024, 1, 31, 12),
    count=7,
    rate=2.5,
    duration_s=90.0,
    follow=True,
    seed=42,
    users=9,
    failure_rate=0.5,
    attack_probability=0.25,
    client="confluent",
    linger_ms=0,
    batch_size=1024,
    compression="zstd",
    progress="log",
    progress_interval_s=0.25,
    summary_json=Path("summary.json"),
)


def test_every_flag_reaches_its_field(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("pw\n")
    argv = [part for flag, (_, value) in EVERY_FLAG.items() for part in (flag, value)]
    argv += ["--sasl-password-file", str(secret)]
    assert parse_config(argv, env={}, now=NOW) == EVERY_FIELD


def test_every_environment_variable_reaches_its_field():
    env = dict(EVERY_FLAG.values())
    assert parse_config([], env={**env, "KAFKA_SASL_PASSWORD": "pw"}, now=NOW) == EVERY_FIELD


def test_without_env_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("LOGINS_TOPIC", "from-the-environment")
    assert parse_config([], now=NOW).topic == "from-the-environment"


def test_an_empty_environment_variable_counts_as_unset():
    config = parse_config([], env={"PRODUCER_RATE": "", "PRODUCER_FOLLOW": ""}, now=NOW)
    assert config.rate == 50.0 and config.follow is False


def test_without_now_the_range_ends_at_the_current_utc_time():
    before = datetime.now(timezone.utc)
    config = parse_config(["--months", "1", "--count", "3"], env={})
    after = datetime.now(timezone.utc)
    assert before.timestamp() * 1000 - 1 <= config.end_ms <= after.timestamp() * 1000
    # An explicit --end is compared with the start taken from the clock: both are aware.
    config = parse_config(["--months", "1", "--end", "2999-12-31"], env={})
    assert config.end_ms == ms(3000, 1, 1)


def test_a_fresh_seed_is_a_non_negative_31_bit_number(monkeypatch):
    bounds = []

    def randbelow(bound: int) -> int:
        bounds.append(bound)
        return 1234

    monkeypatch.setattr(producer_config.secrets, "randbelow", randbelow)
    assert parse_config([], env={}, now=NOW).seed == 1234
    assert bounds == [2_147_483_648]


@pytest.mark.parametrize("text", ["1", "true", "TRUE", "yes", "Yes", "on", "ON"])
def test_boolean_words_for_true(text):
    assert producer_config._switch(text) is True
    env = {"PRODUCER_MONTHS": "1", "PRODUCER_FOLLOW": text}
    assert parse_config([], env=env, now=NOW).follow is True


@pytest.mark.parametrize("text", ["0", "false", "False", "no", "NO", "off", "Off", ""])
def test_boolean_words_for_false(text):
    assert producer_config._switch(text) is False
    assert parse_config(["--months", "1", "--follow", text], env={}, now=NOW).follow is False


def test_producer_follow_false_in_the_environment_means_false():
    env = {"PRODUCER_MONTHS": "1", "PRODUCER_FOLLOW": "false"}
    assert parse_config([], env=env, now=NOW).follow is False
    assert parse_config(["--follow"], env=env, now=NOW).follow is True  # the bare flag


def test_a_boolean_that_is_neither_is_refused():
    with pytest.raises(ValueError, match=r"^'maybe' is not a boolean \(true/false\)$"):
        producer_config._switch("maybe")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1d", 86_400), ("2d", 172_800), ("1.5h", 5_400), (" 10 m ", 600), ("1s", 1), ("3", 3)],
)
def test_duration_units(text, seconds):
    assert parse_duration(text) == seconds


def test_a_duration_without_a_known_unit_is_refused():
    with pytest.raises(ValueError, match=r"^'2w' is not a duration such as 30s, 5m or 2h$"):
        parse_duration("2w")


@pytest.mark.parametrize(
    ("text", "end_of_day", "moment"),
    [
        ("2024-02-29", False, utc(2024, 2, 29)),
        ("2024-02-29", True, utc(2024, 3, 1)),
        ("2024-12-31", True, utc(2025, 1, 1)),
        ("2024-02-29T23:59:59.999Z", False, utc(2024, 2, 29, 23, 59, 59, 999_000)),
        ("2024-02-29T23:59:59.999Z", True, utc(2024, 2, 29, 23, 59, 59, 999_000)),
        ("2024-03-01T00:30:00+01:00", False, utc(2024, 2, 29, 23, 30)),
        ("2024-03-01T00:30:00", False, utc(2024, 3, 1, 0, 30)),  # no zone: UTC
    ],
)
def test_moments_are_aware_and_in_utc(text, end_of_day, moment):
    parsed = parse_moment(text, end_of_day=end_of_day)
    assert parsed == moment
    assert parsed.utcoffset() is not None  # an aware datetime; naive ones never equal aware


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (utc(2025, 1, 31, 8), 1, utc(2024, 12, 31, 8)),  # into December of the year before
        (utc(2025, 3, 31), 3, utc(2024, 12, 31)),
        (utc(2024, 5, 31), 1, utc(2024, 4, 30)),  # 30-day month: clamped
        (utc(2025, 3, 29), 13, utc(2024, 2, 29)),  # leap February, a year and a month back
        (utc(2025, 3, 30), 1, utc(2025, 2, 28)),
        (utc(2024, 3, 15, 6, 30), 12, utc(2023, 3, 15, 6, 30)),
        (utc(2024, 1, 1), 24, utc(2022, 1, 1)),
    ],
)
def test_months_before_in_the_calendar(moment, months, expected):
    assert months_before(moment, months) == expected


def test_fractions_include_both_ends():
    assert producer_config._fraction("0") == 0.0
    assert producer_config._fraction("1") == 1.0
    for text in ("1.5", "-0.1"):
        with pytest.raises(ValueError, match=rf"^'{text}' must be between 0 and 1$"):
            producer_config._fraction(text)


def test_kafka_python_options_without_and_with_sasl():
    plain = KafkaConnection("a:1,b:2", connect_timeout_s=2.5)
    assert plain.kafka_python_options() == {
        "bootstrap_servers": ["a:1", "b:2"],
        "security_protocol": "PLAINTEXT",
        "bootstrap_timeout_ms": 2_500,
    }
    sasl = KafkaConnection("k:9093", "SASL_SSL", "SCRAM-SHA-256", "u", "pw", "/ca.pem", 30.0)
    assert sasl.kafka_python_options() == {
        "bootstrap_servers": ["k:9093"],
        "security_protocol": "SASL_SSL",
        "bootstrap_timeout_ms": 30_000,
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": "pw",
        "ssl_cafile": "/ca.pem",
    }


@pytest.mark.parametrize(
    ("argv", "env", "line"),
    [
        (
            ["--start", "2024-01-01", "--months", "3"],
            {},
            "use either --start or --months, not both",
        ),
        (["--end", "2024-01-01"], {}, "--end needs --start or --months (backfill mode)"),
        (
            ["--start", "2024-01-01T00:00:00Z", "--end", "2024-01-01T00:00:00Z"],
            {},
            "--end (2024-01-01T00:00:00+00:00) must be after --start (2024-01-01T00:00:00+00:00)",
        ),
        (["--follow"], {}, "--follow continues a backfill; give --start or --months"),
        (
            ["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN"],
            {},
            "SASL_SSL needs --sasl-mechanism and --sasl-username",
        ),
        (
            ["--security-protocol", "SASL_SSL", "--sasl-username", "u"],
            {},
            "SASL_SSL needs --sasl-mechanism and --sasl-username",
        ),
        (
            ["--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN"],
            {"KAFKA_SASL_USERNAME": "u"},
            "SASL needs a password: set KAFKA_SASL_PASSWORD or --sasl-password-file",
        ),
        (
            [],
            {"PRODUCER_RATE": "fast"},
            "environment variable PRODUCER_RATE='fast': 'fast' is not a number",
        ),
        (
            [],
            {"PRODUCER_USERS": "0"},
            "environment variable PRODUCER_USERS='0': '0' must be greater than 0",
        ),
        (
            ["--compression", "brotli"],
            {},
            "argument --compression: 'brotli' is not one of lz4, gzip, zstd, none",
        ),
        (["--failure-rate", "2"], {}, "argument --failure-rate: '2' must be between 0 and 1"),
    ],
)
def test_usage_errors_say_exactly_what_is_wrong(argv, env, line, capsys):
    with pytest.raises(SystemExit) as exited:
        parse_config(argv, env=env, now=NOW)
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"python -m producer: error: {line}"


def test_an_unreadable_password_file_is_a_usage_error(tmp_path, capsys):
    argv = ["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN", "--sasl-username", "u"]
    with pytest.raises(SystemExit):
        parse_config([*argv, "--sasl-password-file", str(tmp_path / "missing")], env={}, now=NOW)
    assert "cannot read the SASL password file" in capsys.readouterr().err


def test_help_shows_every_flag_with_its_metavar_and_variable():
    text = producer_config.build_parser({}).format_help()
    flat = " ".join(text.split())  # argparse wraps lines to the terminal width
    assert text.startswith("usage: python -m producer ")
    assert (
        "Generate realistic login events with Faker and publish them to Kafka as JSON "
        "(key: user_id). Backfill mode (--start or --months) spreads event times over a past "
        "range; otherwise live mode stamps events with the current time at --rate."
    ) in flat
    assert (
        "Every flag has an environment variable, shown in [brackets]; a flag beats its "
        "variable. KAFKA_SASL_PASSWORD holds the SASL password."
    ) in flat
    assert "\nKafka:\n" in text and "\nwhat to generate:\n" in text and "\ndelivery:\n" in text
    for flag, metavar in [
        ("--topic", "NAME"),
        ("--rate", "EVENTS_PER_S"),
        ("--follow", "[BOOL]"),
        ("--sasl-password-file", "FILE"),
        ("--summary-json", "FILE"),
    ]:
        assert f"{flag} {metavar}" in flat
    assert "topic to publish to; created if missing (default: logins) [LOGINS_TOPIC]" in flat
    for flag, (variable, _) in EVERY_FLAG.items():
        assert re.search(rf"{flag} .*?\[{variable}\]", flat), flag


def test_help_defaults_come_from_the_environment():
    flat = " ".join(producer_config.build_parser({"PRODUCER_RATE": "7"}).format_help().split())
    assert "live mode events per second (default: 7.0) [PRODUCER_RATE]" in flat
