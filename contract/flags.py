"""One way to declare a command-line flag and its environment variable, for the producer,
the job and the dashboard.

People configure the pipeline with flags, containers with environment variables; every
flag has one, and a flag beats its variable, which beats the default. A :class:`Flag`
holds all of it in one declaration (flag, variable, parser, default, metavar, help), and
:func:`add_flags` puts a tuple of them on an argparse parser.

A bad value is a usage error wherever it comes from: exit status 2 with argparse's
``usage:`` line and one ``error:`` line. For an environment variable that line names the
variable and the value as they were set (``environment variable PRODUCER_RATE='fast': ...``),
since the user typed no flag and must be told where to look. Argparse would otherwise either
report the variable's value as if it were the flag's, or, for a default that is already
converted, not check it at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn


def _text(value: str) -> str:
    return value


@dataclass(frozen=True)
class Flag:
    """A flag, its environment variable, how its text is read, and its default.

    ``parse`` turns a flag's or a variable's text into the value (raising ``ValueError`` or
    ``argparse.ArgumentTypeError`` with a message that says what is accepted); ``default``
    is already a value. ``help`` gets the variable appended in brackets, as ``--help``
    shows it.
    """

    flag: str
    env: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] = _text
    metavar: str | None = None
    argparse_extra: dict[str, Any] = field(default_factory=dict)  # e.g. nargs="?" for a switch

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


class FlagError(ValueError):
    """An environment variable's value that its flag's parser refused."""


def explained(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` as an argparse ``type`` that prints the parser's own message, not argparse's
    generic "invalid value"."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(parse, "__name__", "value")
    return convert


def env_value(flag: Flag, env: Mapping[str, str]) -> Any:
    """The flag's default as ``env`` sets it: its variable parsed, or the declared default
    when the variable is unset or empty."""
    raw = env.get(flag.env)
    if raw is None or raw == "":
        return flag.default
    try:
        return flag.parse(raw)
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise FlagError(f"environment variable {flag.env}={raw!r}: {exc}") from None


def add_flags(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flags: Iterable[Flag],
    env: Mapping[str, str],
) -> None:
    """Add ``flags`` with their defaults from ``env``; raises :class:`FlagError` for a
    variable its flag cannot read (:func:`usage_error` turns it into exit status 2)."""
    for flag in flags:
        parser.add_argument(
            flag.flag,
            type=explained(flag.parse),
            default=env_value(flag, env),
            metavar=flag.metavar,
            help=f"{flag.help} [{flag.env}]",
            **flag.argparse_extra,
        )


def usage_error(prog: str, error: FlagError) -> NoReturn:
    """Exit with status 2 and the usage line, as argparse does for a bad flag."""
    argparse.ArgumentParser(prog=prog).error(str(error))


def positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """``kind`` (``int``, ``float``) greater than 0."""

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            noun = "a whole number" if kind is int else "a number"
            raise ValueError(f"{text!r} is not {noun}") from None
        if value <= 0:
            raise ValueError(f"{text!r} must be greater than 0")
        return value

    convert.__name__ = f"positive {kind.__name__}"
    return convert


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise ValueError(f"{text!r} must be 0 or more")
    return value


def one_of(*values: str) -> Callable[[str], str]:
    """One of ``values``; unlike argparse's ``choices`` it also checks environment values."""

    def convert(text: str) -> str:
        if text not in values:
            raise ValueError(f"{text!r} is not one of {', '.join(values)}")
        return text

    convert.__name__ = "one of " + ", ".join(values)
    return convert
