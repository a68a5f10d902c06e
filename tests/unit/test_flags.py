"""The one flag mechanism (contract/flags.py) the producer, the job and the dashboard use:
a variable gives the default, a flag beats it, and a bad value of either is a usage error
(exit 2) that says where it came from."""

from __future__ import annotations

import argparse

import pytest

from contract.flags import (
    Flag,
    FlagError,
    add_flags,
    non_negative_int,
    one_of,
    positive,
    usage_error,
)

FLAGS = (
    Flag("--rate", "RATE", "events per second (default: %(default)s)", 5.0, positive(float), "N"),
    Flag("--mode", "MODE", "how", "fast", one_of("fast", "slow")),
    Flag("--name", "NAME", "a name"),
)


def parser(env: dict[str, str]) -> argparse.ArgumentParser:
    built = argparse.ArgumentParser(prog="prog")
    add_flags(built, FLAGS, env)
    return built


def test_default_then_variable_then_flag():
    assert vars(parser({}).parse_args([])) == {"rate": 5.0, "mode": "fast", "name": None}
    from_env = parser({"RATE": "7", "MODE": "slow", "NAME": "x"}).parse_args([])
    assert (from_env.rate, from_env.mode, from_env.name) == (7.0, "slow", "x")
    flagged = parser({"RATE": "7"}).parse_args(["--rate", "9"])
    assert flagged.rate == 9.0


def test_an_empty_variable_is_unset():
    assert parser({"RATE": "", "NAME": ""}).parse_args([]).rate == 5.0


def test_the_help_names_the_variable_and_the_metavar():
    text = " ".join(parser({}).format_help().split())
    assert "--rate N events per second (default: 5.0) [RATE]" in text
    assert "--name NAME a name [NAME]" in text


def test_a_bad_variable_names_itself_and_its_value():
    with pytest.raises(FlagError) as refused:
        parser({"RATE": "fast"})
    assert str(refused.value) == "environment variable RATE='fast': 'fast' is not a number"
    with pytest.raises(FlagError, match=r"^environment variable MODE='x': 'x' is not one of"):
        parser({"MODE": "x"})


def test_a_bad_flag_is_argparses_usage_error_with_the_parsers_message(capsys):
    with pytest.raises(SystemExit) as exited:
        parser({}).parse_args(["--rate", "-1"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "prog: error: argument --rate: '-1' must be greater than 0"
    )


def test_a_bad_variable_exits_like_a_bad_flag(capsys):
    with pytest.raises(SystemExit) as exited:
        usage_error("prog", FlagError("environment variable RATE='0': '0' must be greater than 0"))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: prog")
    assert err.splitlines()[-1] == (
        "prog: error: environment variable RATE='0': '0' must be greater than 0"
    )


def test_positive_numbers():
    positive_int, positive_float = positive(int), positive(float)
    assert positive_int("1") == 1 and positive_float("0.5") == 0.5
    for text in ("0", "-1"):
        with pytest.raises(ValueError, match=rf"^'{text}' must be greater than 0$"):
            positive_int(text)
    with pytest.raises(ValueError, match=r"^'0.0' must be greater than 0$"):
        positive_float("0.0")
    with pytest.raises(ValueError, match=r"^'1.5' is not a whole number$"):
        positive_int("1.5")
    with pytest.raises(ValueError, match=r"^'x' is not a number$"):
        positive_float("x")
    assert positive_int.__name__ == "positive int"  # what a traceback shows


def test_non_negative_whole_numbers():
    assert non_negative_int("0") == 0 and non_negative_int("3") == 3
    with pytest.raises(ValueError, match=r"^'-1' must be 0 or more$"):
        non_negative_int("-1")
    with pytest.raises(ValueError, match=r"^'x' is not a whole number$"):
        non_negative_int("x")


def test_choices():
    choose = one_of("lz4", "gzip")
    assert choose("gzip") == "gzip"
    with pytest.raises(ValueError, match=r"^'brotli' is not one of lz4, gzip$"):
        choose("brotli")
