"""Command-line flags and their environment-variable equivalents.

Containers are configured by environment, people by flags; both land in one
:class:`ProducerConfig`. Kafka connection settings use the names the Spark job reads
too (``KAFKA_BOOTSTRAP_SERVERS``, ``LOGINS_TOPIC``, ``KAFKA_SECURITY_PROTOCOL`` ...), so
one environment configures the whole pipeline; producer-only settings are
``PRODUCER_<FLAG>``. A flag beats its variable, which beats the default.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from contract.flags import Flag, FlagError, add_flags, one_of, positive, usage_error
from contract.kafka import (
    DEFAULT_BOOTSTRAP_SERVERS,
    DEFAULT_TOPIC,
    SECURITY_FLAGS,
    KafkaSecurity,
    SecurityError,
    security_from_args,
)
from producer.events import DEFAULT_ATTACK_PROBABILITY, DEFAULT_FAILURE_RATE, DEFAULT_USERS

DEFAULT_BACKFILL_COUNT = 10_000
DEFAULT_RATE = 50.0

CLIENTS = ("kafka-python", "confluent")
COMPRESSIONS = ("lz4", "gzip", "zstd", "none")
PROGRESS_MODES = ("auto", "bar", "log", "none")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


@dataclass(frozen=True)
class KafkaConnection:
    """How to reach and authenticate to Kafka. The password never appears in ``repr``."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP_SERVERS
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    connect_timeout_s: float = 30.0

    @property
    def security(self) -> KafkaSecurity:
        return KafkaSecurity(
            self.security_protocol,
            self.sasl_mechanism,
            self.sasl_username,
            self.sasl_password,
            self.ssl_cafile,
        )

    def kafka_python_options(self) -> dict[str, Any]:
        """Keyword arguments for kafka-python clients."""
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "bootstrap_timeout_ms": int(self.connect_timeout_s * 1000),
            **self.security.kafka_python_options(),
        }


@dataclass(frozen=True)
class ProducerConfig:
    """Everything one producer run needs; built by :func:`parse_config`."""

    kafka: KafkaConnection
    topic: str = DEFAULT_TOPIC
    partitions: int = 3
    start_ms: int | None = None  # set: backfill mode
    end_ms: int | None = None
    count: int | None = None
    rate: float = DEFAULT_RATE
    duration_s: float | None = None
    follow: bool = False
    seed: int = 0  # parse_config draws a fresh one when --seed is not given
    users: int = DEFAULT_USERS
    failure_rate: float = DEFAULT_FAILURE_RATE
    attack_probability: float = DEFAULT_ATTACK_PROBABILITY
    client: str = "kafka-python"
    linger_ms: int = 20
    batch_size: int = 256 * 1024
    compression: str = "lz4"
    progress: str = "auto"
    progress_interval_s: float = 5.0
    summary_json: Path | None = None
    bursts_file: Path | None = None

    @property
    def backfill(self) -> bool:
        return self.start_ms is not None


def parse_duration(text: str) -> float:
    """Seconds in ``"90"``, ``"90s"``, ``"5m"``, ``"2h"``, ``"1d"`` or ``"250ms"``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 2h")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def parse_moment(text: str, *, end_of_day: bool = False) -> datetime:
    """A UTC datetime from ``YYYY-MM-DD`` or an ISO-8601 date-time.

    A bare date as ``--end`` means the end of that day, so ``--start 2024-01-01 --end
    2024-12-31`` covers the whole year.
    """
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return moment + timedelta(days=1) if end_of_day else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or ISO-8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time ``months`` calendar months earlier (clamped to month end)."""
    year, month = divmod(moment.year * 12 + moment.month - 1 - months, 12)
    month += 1
    days_in_month = (date(year + month // 12, month % 12 + 1, 1) - date(year, month, 1)).days
    return moment.replace(year=year, month=month, day=min(moment.day, days_in_month))


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{text!r} must be between 0 and 1")
    return value


def _switch(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false)")


def _end_of(text: str) -> datetime:
    return parse_moment(text, end_of_day=True)


FLAG_GROUPS: dict[str, tuple[Flag, ...]] = {
    "Kafka": (
        Flag("--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS",
             "comma-separated host:port list (default: %(default)s)", DEFAULT_BOOTSTRAP_SERVERS,
             metavar="HOST:PORT"),
        Flag("--topic", "LOGINS_TOPIC", "topic to publish to; created if missing "
             "(default: %(default)s)", DEFAULT_TOPIC, metavar="NAME"),
        Flag("--partitions", "PRODUCER_PARTITIONS",
             "partitions when the topic is created (default: %(default)s)", 3, positive(int),
             "N"),
        Flag("--connect-timeout", "PRODUCER_CONNECT_TIMEOUT",
             "how long to keep retrying an unreachable broker, e.g. 30s (default: 30s)", 30.0,
             parse_duration, "DURATION"),
        *SECURITY_FLAGS,  # the same flags and variables as the Spark job's
    ),
    "what to generate": (
        Flag("--start", "PRODUCER_START", "backfill from this date or ISO date-time (UTC)",
             None, parse_moment, "DATE"),
        Flag("--end", "PRODUCER_END",
             "backfill up to this date (inclusive) or date-time (default: now)", None, _end_of,
             "DATE"),
        Flag("--months", "PRODUCER_MONTHS",
             "backfill the last N calendar months up to now (instead of --start)", None,
             positive(int), "N"),
        Flag("--count", "PRODUCER_COUNT",
             f"number of events (backfill default: {DEFAULT_BACKFILL_COUNT:,}; "
             "live default: unlimited)", None, positive(int), "N"),
        Flag("--rate", "PRODUCER_RATE", "live mode events per second (default: %(default)s)",
             DEFAULT_RATE, positive(float), "EVENTS_PER_S"),
        Flag("--duration", "PRODUCER_DURATION", "stop live mode after this long, e.g. 10m",
             None, parse_duration, "DURATION"),
        Flag("--follow", "PRODUCER_FOLLOW", "after the backfill, continue in live mode at --rate",
             False, _switch, "BOOL", {"nargs": "?", "const": True}),
        Flag("--seed", "PRODUCER_SEED",
             "random seed; the same seed gives the same events, event ids included "
             "(default: a new one per run, printed at the start)", None, int, "N"),
        Flag("--users", "PRODUCER_USERS",
             "size of the simulated user population (default: %(default)s)", DEFAULT_USERS,
             positive(int), "N"),
        Flag("--failure-rate", "PRODUCER_FAILURE_RATE",
             "share of ordinary logins that fail (default: %(default)s)", DEFAULT_FAILURE_RATE,
             _fraction, "FRACTION"),
        Flag("--attack-probability", "PRODUCER_ATTACK_PROBABILITY",
             "chance per event that a credential-stuffing burst starts (default: %(default)s)",
             DEFAULT_ATTACK_PROBABILITY, _fraction, "FRACTION"),
    ),
    "delivery": (
        Flag("--client", "PRODUCER_CLIENT", "Kafka client library; confluent needs the "
             "[confluent] extra (default: %(default)s)", "kafka-python", one_of(*CLIENTS),
             "LIBRARY"),
        Flag("--linger-ms", "PRODUCER_LINGER_MS", "batching delay in ms (default: %(default)s)",
             20, int, "MS"),
        Flag("--batch-size", "PRODUCER_BATCH_SIZE",
             "maximum batch size in bytes (default: %(default)s)", 256 * 1024, positive(int),
             "BYTES"),
        Flag("--compression", "PRODUCER_COMPRESSION",
             "record batch compression (default: %(default)s)", "lz4", one_of(*COMPRESSIONS),
             "CODEC"),
        Flag("--progress", "PRODUCER_PROGRESS",
             "progress bar on a terminal, log lines otherwise (default: %(default)s)", "auto",
             one_of(*PROGRESS_MODES), "MODE"),
        Flag("--progress-interval", "PRODUCER_PROGRESS_INTERVAL",
             "seconds between progress log lines (default: 5s)", 5.0, parse_duration,
             "DURATION"),
        Flag("--summary-json", "PRODUCER_SUMMARY_JSON",
             "also write the final delivery summary as JSON to this file", None, Path, "FILE"),
        Flag("--bursts-file", "PRODUCER_BURSTS_FILE",
             "append one JSON line per credential-stuffing burst generated (address, first "
             "and last event time, attempts, failed, accounts): the ground truth for the "
             "alerts", None, Path, "FILE"),
    ),
}  # fmt: skip

PROG = "python -m producer"


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """:data:`FLAG_GROUPS` with their defaults from ``env``; raises
    :class:`~contract.flags.FlagError` for a variable it cannot read."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Generate realistic login events with Faker and publish them to Kafka as JSON "
            "(key: user_id). Backfill mode (--start or --months) spreads event times over a "
            "past range; otherwise live mode stamps events with the current time at --rate."
        ),
        epilog=(
            "Every flag has an environment variable, shown in [brackets]; a flag beats its "
            "variable. KAFKA_SASL_PASSWORD holds the SASL password."
        ),
    )
    for title, flags in FLAG_GROUPS.items():
        add_flags(parser.add_argument_group(title), flags, env)
    return parser


def parse_config(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> ProducerConfig:
    """Flags + environment -> :class:`ProducerConfig`; usage errors exit with status 2."""
    env = os.environ if env is None else env
    now = now or datetime.now(timezone.utc)
    try:
        parser = build_parser(env)
    except FlagError as exc:
        usage_error(PROG, exc)
    args = parser.parse_args(argv)

    if args.start is not None and args.months is not None:
        parser.error("use either --start or --months, not both")
    start = args.start
    if args.months is not None:
        start = months_before(now, args.months)
    end = args.end if args.end is not None else now
    if start is None and args.end is not None:
        parser.error("--end needs --start or --months (backfill mode)")
    if start is not None and end <= start:
        parser.error(f"--end ({end.isoformat()}) must be after --start ({start.isoformat()})")
    if start is None and args.follow:
        parser.error("--follow continues a backfill; give --start or --months")

    count = args.count
    if start is not None and count is None:
        count = DEFAULT_BACKFILL_COUNT
    try:
        security = security_from_args(args, env)
    except SecurityError as exc:
        parser.error(str(exc))

    return ProducerConfig(
        kafka=KafkaConnection(
            bootstrap_servers=args.bootstrap_servers,
            security_protocol=args.security_protocol,
            sasl_mechanism=args.sasl_mechanism,
            sasl_username=args.sasl_username,
            sasl_password=security.password,
            ssl_cafile=args.ssl_cafile,
            connect_timeout_s=args.connect_timeout,
        ),
        topic=args.topic,
        partitions=args.partitions,
        start_ms=None if start is None else int(start.timestamp() * 1000),
        end_ms=None if start is None else int(end.timestamp() * 1000),
        count=count,
        rate=args.rate,
        duration_s=args.duration,
        follow=args.follow,
        # Without --seed every run gets its own events: two runs with one fixed default seed
        # would send identical event ids, and the job counts a repeated id only once.
        seed=args.seed if args.seed is not None else secrets.randbelow(2**31),
        users=args.users,
        failure_rate=args.failure_rate,
        attack_probability=args.attack_probability,
        client=args.client,
        linger_ms=args.linger_ms,
        batch_size=args.batch_size,
        compression=args.compression,
        progress=args.progress,
        progress_interval_s=args.progress_interval,
        summary_json=args.summary_json,
        bursts_file=args.bursts_file,
    )
