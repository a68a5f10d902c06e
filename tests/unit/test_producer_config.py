"""Producer flags and environment variables, and their usage errors."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from producer.config import months_before, parse_config, parse_duration

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
        (["--count", "many"], {}, "invalid literal"),
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
