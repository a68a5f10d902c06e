"""The job's flags and environment variables, parsed into :class:`JobOptions`.

Every flag has an environment variable (for containers); a flag beats its variable.
Only the standard library and the shared contract: usage errors are reported before
Spark starts."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from consumer.state_store import AUTO, STORES
from contract.alerts import DEFAULT_ALERTS_TOPIC, AlertRule
from contract.flags import (
    Flag,
    FlagError,
    add_flags,
    non_negative_int,
    one_of,
    positive,
    usage_error,
)
from contract.kafka import (
    DEFAULT_BOOTSTRAP_SERVERS,
    DEFAULT_TOPIC,
    PASSWORD_ENV,
    SECURITY_FLAGS,
    KafkaSecurity,
    SecurityError,
    security_from_args,
)
from contract.tables import (
    DEFAULT_DB_NAME,
    DEFAULT_PERIOD,
    PERIODS,
    REJECTED_CSV,
    Period,
    url_with_password,
)

APP_NAME = "monthly_logins"
# The database password, when --db-url names only the user: kept out of the URL, as the
# Docker stack does (postgres/job.env).
DB_PASSWORD_ENV = "CONSUMER_DB_PASSWORD"


DEFAULT_CHECKPOINT_DIR = ".local/checkpoints/monthly_logins"
# The streaming query's own folder in the checkpoint (offsets, commits, state); the name
# stays "monthly" whatever the period, so checkpoints from before --period still resume.
QUERY_CHECKPOINT = "monthly"
# The credential-stuffing detector's query (--alerts-topic): its name and checkpoint folder.
ALERTS_QUERY = "login_alerts"
ALERTS_CHECKPOINT = "alerts"
ALERTS_OFF = "off"


@dataclass(frozen=True)
class JobOptions:
    bootstrap_servers: str
    topic: str
    starting_offsets: str
    trigger: str  # "available-now" or a Spark interval such as "10 seconds"
    checkpoint_dir: str
    output_dir: str | None
    quarantine_dir: str
    timezone: str
    max_offsets_per_trigger: int | None
    shuffle_partitions: int
    max_future_seconds: int
    security: KafkaSecurity
    connect_timeout_s: int
    dedupe_window: str | None = "24 hours"
    period: Period = PERIODS[DEFAULT_PERIOD]
    db_url: str | None = None  # a SQLAlchemy URL, or None for no database
    kafka_retry_timeout_s: int = 60  # how long a running job waits for Kafka to come back
    db_retry_timeout_s: int = 60  # how long a batch's database write is retried
    state_store: str = AUTO  # auto, memory or rocksdb (consumer/state_store.py)
    alerts_topic: str | None = None  # where the detector publishes; None: no detector
    alert_rule: AlertRule = field(default_factory=AlertRule)

    def kafka_properties(self) -> dict[str, str]:
        return {"bootstrap.servers": self.bootstrap_servers, **self.security.java_properties()}

    def kafka_source_options(self) -> dict[str, str]:
        """Options of Spark's Kafka source: the client properties (``kafka.``-prefixed) and
        the retry settings that bound how long a running job waits for Kafka
        (:func:`kafka_retry_options`)."""
        client = {f"kafka.{key}": value for key, value in self.kafka_properties().items()}
        return {**client, **kafka_retry_options(self.kafka_retry_timeout_s)}


# Spark's own default number of attempts to fetch offsets, and its pause between them.
OFFSET_FETCH_ATTEMPTS, OFFSET_FETCH_PAUSE_MS = 3, 1000


def kafka_retry_options(timeout_s: int) -> dict[str, str]:
    """Kafka source options under which a broker that goes away while the job runs is waited
    for at least ``timeout_s`` seconds (and at most about twice that), then fails the query.

    Nothing here is a loop of ours: every wait is a Kafka client's, three times a third of
    the bound. The driver asks for offsets ``OFFSET_FETCH_ATTEMPTS`` times
    (``fetchOffset.numRetries``), each attempt waiting ``default.api.timeout.ms`` while the
    client reconnects. A task reading records waits ``kafkaConsumer.pollTimeoutMs`` for
    them, then at most one ``default.api.timeout.ms`` for the partition's offsets, and is
    attempted three times (``consumer/submit.sh`` gives a local master three task
    attempts; a cluster has four by default). Spark's own defaults add up to minutes (60 s
    per offset request, 120 s per poll) or, locally, to one failed request.
    ``request.timeout.ms`` may not exceed ``default.api.timeout.ms`` (Kafka's admin client
    refuses that), so it is the same.
    """
    third_ms = str(max(timeout_s * 1000 // OFFSET_FETCH_ATTEMPTS, 1000))
    return {
        "fetchOffset.numRetries": str(OFFSET_FETCH_ATTEMPTS),
        "fetchOffset.retryIntervalMs": str(OFFSET_FETCH_PAUSE_MS),
        "kafkaConsumer.pollTimeoutMs": third_ms,
        "kafka.default.api.timeout.ms": third_ms,
        "kafka.request.timeout.ms": third_ms,
    }


_INTERVAL = re.compile(r"^\s*(\d+)\s*(ms|s|sec|seconds?|m|min|minutes?|h|hours?|d|days?)\s*$")


_INTERVAL_WORDS = {
    "ms": "milliseconds",
    "s": "seconds",
    "sec": "seconds",
    "second": "seconds",
    "seconds": "seconds",
    "m": "minutes",
    "min": "minutes",
    "minute": "minutes",
    "minutes": "minutes",
    "h": "hours",
    "hour": "hours",
    "hours": "hours",
    "d": "days",
    "day": "days",
    "days": "days",
}


def parse_trigger(text: str) -> str:
    """``available-now`` or an interval such as ``10s`` / ``1 minute`` (Spark's spelling)."""
    if text.strip().lower() in ("available-now", "availablenow", "available_now"):
        return "available-now"
    match = _INTERVAL.match(text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a trigger: use available-now or an interval such as 10s or 1m"
        )
    return f"{int(match.group(1))} {_INTERVAL_WORDS[match.group(2)]}"


def parse_dedupe_window(text: str) -> str | None:
    """An interval such as ``24h`` (Spark's spelling), or None for ``0``/``off``."""
    if text.strip().lower() in ("0", "off", "none"):
        return None
    interval = parse_trigger(text)
    if interval == "available-now":
        raise argparse.ArgumentTypeError(f"{text!r} is not an interval such as 24h")
    return interval


def parse_timezone(text: str) -> str:
    """An IANA zone name, checked against Python's time-zone database where there is one.

    Spark resolves the zone with Java's own database; Python's is only an early check. Some
    images (minimal Debian, Bitnami's among them) ship no tzdata, where even ``UTC`` is
    unknown to :mod:`zoneinfo`: there the name goes to Spark unchecked.
    """
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        if not text.strip() or "\0" in text or available_timezones():
            raise argparse.ArgumentTypeError(
                f"{text!r} is not an IANA time zone such as UTC or Europe/Berlin"
            ) from None
    return text


DB_OFF = "off"
_DB_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+_.-]*://")


def parse_db_url(text: str) -> str:
    """A SQLAlchemy URL (``dialect[+driver]://...``), or ``off`` for no database.

    Only the shape is checked here (SQLAlchemy is not imported before Spark starts); the
    database itself is checked when the job starts, before its first batch.
    """
    if text.strip().lower() in (DB_OFF, "none"):
        return DB_OFF
    if not _DB_URL.match(text.strip()):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a SQLAlchemy URL such as sqlite:///output/logins.db or "
            "postgresql+pg8000://user@host:5432/logins (or off)"
        )
    return text.strip()


def default_db_url(output_dir: str | None) -> str | None:
    """SQLite in the output folder (no server to run), or no database without one."""
    if not output_dir:
        return None
    return "sqlite:///" + os.path.abspath(os.path.join(output_dir, DEFAULT_DB_NAME))


JOB_FLAGS = (
    Flag("--bootstrap-servers", "KAFKA_BOOTSTRAP_SERVERS",
         "Kafka bootstrap servers (default: %(default)s)", DEFAULT_BOOTSTRAP_SERVERS,
         metavar="HOST:PORT"),
    Flag("--topic", "LOGINS_TOPIC", "topic to read (default: %(default)s)", DEFAULT_TOPIC,
         metavar="NAME"),
    Flag("--starting-offsets", "CONSUMER_STARTING_OFFSETS",
         "where a new checkpoint starts reading (default: %(default)s)", "earliest",
         one_of("earliest", "latest"), "{earliest,latest}"),
    Flag("--trigger", "CONSUMER_TRIGGER",
         "available-now (drain the topic, then stop) or an interval such as 10s "
         "(default: 10s)", "10 seconds", parse_trigger, "TRIGGER"),
    Flag("--checkpoint-dir", "CONSUMER_CHECKPOINT_DIR",
         "where the job keeps its progress and state; reuse it to resume "
         "(default: %(default)s)", DEFAULT_CHECKPOINT_DIR, metavar="DIR"),
    Flag("--output-dir", "CONSUMER_OUTPUT_DIR",
         "also write the table as DIR/monthly_logins.csv (weekly_logins.csv, "
         f"daily_logins.csv) and rejected counts as DIR/{REJECTED_CSV} after every batch",
         metavar="DIR"),
    Flag("--db-url", "CONSUMER_DB_URL",
         "also write the table, the rejected counts and one progress row per batch to "
         f"this SQLAlchemy database (default: sqlite:///OUTPUT_DIR/{DEFAULT_DB_NAME} with "
         "--output-dir; off for none)", None, parse_db_url, "URL"),
    Flag("--quarantine-dir", "CONSUMER_QUARANTINE_DIR",
         "where rejected records are written (default: OUTPUT_DIR/rejected, or "
         "CHECKPOINT_DIR/quarantine)", metavar="DIR"),
    Flag("--timezone", "CONSUMER_TIMEZONE",
         "time zone of the calendar months (default: %(default)s)", "UTC", parse_timezone,
         "ZONE"),
    Flag("--period", "CONSUMER_PERIOD",
         "count logins per calendar month, ISO week or day of event time; fixed by the "
         "checkpoint once started (default: %(default)s)", DEFAULT_PERIOD, one_of(*PERIODS),
         "{" + ",".join(PERIODS) + "}"),
    Flag("--max-offsets-per-trigger", "CONSUMER_MAX_OFFSETS_PER_TRIGGER",
         "cap on records per batch (default: no cap)", None, positive(int), "N"),
    Flag("--shuffle-partitions", "CONSUMER_SHUFFLE_PARTITIONS",
         "state partitions; fixed by the checkpoint once started (default: %(default)s)", 4,
         positive(int), "N"),
    Flag("--max-future", "CONSUMER_MAX_FUTURE_SECONDS",
         "reject events whose time is further than this ahead of their Kafka timestamp "
         "(default: %(default)s)", 86400, positive(int), "SECONDS"),
    Flag("--dedupe-window", "CONSUMER_DEDUPE_WINDOW",
         "count an event_id once if it repeats within this much processing time; "
         "0 counts every record (default: 24h)", "24 hours", parse_dedupe_window, "INTERVAL"),
    Flag("--state-store", "CONSUMER_STATE_STORE",
         "where a new checkpoint keeps its state: memory (the JVM heap; fastest) or "
         "rocksdb (off the heap, on disk; any size); auto: memory for a drain whose ids fit "
         "in a quarter of the heap, rocksdb otherwise; fixed by the checkpoint once started "
         "(default: %(default)s)", AUTO, one_of(*STORES), "{" + ",".join(STORES) + "}"),
    Flag("--connect-timeout", "CONSUMER_CONNECT_TIMEOUT",
         "how long to wait for Kafka before failing (default: %(default)s)", 30,
         positive(int), "SECONDS"),
    Flag("--kafka-retry-timeout", "CONSUMER_KAFKA_RETRY_TIMEOUT",
         "how long a running job waits for Kafka to come back before it stops "
         "(exit 3; a rerun resumes) (default: %(default)s)", 60, positive(int), "SECONDS"),
    Flag("--db-retry-timeout", "CONSUMER_DB_RETRY_TIMEOUT",
         "how long a batch's database write is retried while the database is "
         "unavailable before the job stops (exit 3; a rerun resumes) (default: %(default)s)",
         60, non_negative_int, "SECONDS"),
    Flag("--alerts-topic", "CONSUMER_ALERTS_TOPIC",
         "also detect credential stuffing and publish each alert to this topic (created "
         f"if missing; {DEFAULT_ALERTS_TOPIC} is the usual name), the database's alerts "
         "table and the console; needs the database; off for none (default: %(default)s)",
         ALERTS_OFF, metavar="TOPIC"),
    Flag("--alert-window", "CONSUMER_ALERT_WINDOW",
         "length of the sliding event-time windows, a multiple of 10 s "
         "(default: %(default)s)", AlertRule.window_s, positive(int), "SECONDS"),
    Flag("--alert-min-failed", "CONSUMER_ALERT_MIN_FAILED",
         "failed logins from one address in one window that make an alert "
         "(default: %(default)s)", AlertRule.min_failed, positive(int), "N"),
    Flag("--alert-min-accounts", "CONSUMER_ALERT_MIN_ACCOUNTS",
         "distinct accounts among them (default: %(default)s)", AlertRule.min_accounts,
         positive(int), "N"),
    Flag("--alert-watermark", "CONSUMER_ALERT_WATERMARK",
         "how late (event time) a failed login may arrive and still count "
         "(default: %(default)s)", AlertRule.watermark_s, non_negative_int, "SECONDS"),
    *SECURITY_FLAGS,
)  # fmt: skip

PROG = "consumer/submit.sh"


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """:data:`JOB_FLAGS` with their defaults from ``env`` (the variable is in brackets in
    ``--help``); raises :class:`~contract.flags.FlagError` for a variable it cannot read."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Count logins per calendar month of event time from a Kafka topic.",
        epilog=f"{PASSWORD_ENV} (or --sasl-password-file) holds the SASL password; "
        f"{DB_PASSWORD_ENV} the database password when --db-url has none.",
    )
    add_flags(parser, JOB_FLAGS, env)
    return parser


def parse_options(argv: Sequence[str] | None, env: Mapping[str, str]) -> JobOptions:
    """The job's options from flags and environment; usage errors exit with status 2."""
    try:
        parser = build_parser(env)
    except FlagError as exc:
        usage_error(PROG, exc)
    args = parser.parse_args(argv)

    try:
        security = security_from_args(args, env)
    except SecurityError as exc:
        parser.error(str(exc))
    quarantine = args.quarantine_dir or (
        os.path.join(args.output_dir, "rejected")
        if args.output_dir
        else os.path.join(args.checkpoint_dir, "quarantine")
    )
    db_url = args.db_url if args.db_url is not None else default_db_url(args.output_dir)
    db_password = env.get(DB_PASSWORD_ENV)
    if db_password and db_url and db_url != DB_OFF:
        try:
            db_url = url_with_password(db_url, db_password)
        except ValueError as exc:
            parser.error(f"{DB_PASSWORD_ENV} is set, but {exc}")
    try:
        rule = AlertRule(
            window_s=args.alert_window,
            slide_s=min(AlertRule.slide_s, args.alert_window),
            min_failed=args.alert_min_failed,
            min_accounts=args.alert_min_accounts,
            watermark_s=args.alert_watermark,
        )
    except ValueError as exc:
        parser.error(f"--alert-window: {exc}")
    alerts_topic = None if args.alerts_topic == ALERTS_OFF else args.alerts_topic
    if alerts_topic and (not db_url or db_url == DB_OFF):
        parser.error(
            "--alerts-topic needs the database (its alerts table is what keeps an alert "
            "from being published twice): give --output-dir or --db-url"
        )
    return JobOptions(
        bootstrap_servers=args.bootstrap_servers,
        topic=args.topic,
        starting_offsets=args.starting_offsets,
        trigger=args.trigger,
        checkpoint_dir=args.checkpoint_dir,
        output_dir=args.output_dir,
        quarantine_dir=quarantine,
        timezone=args.timezone,
        max_offsets_per_trigger=(
            None if args.max_offsets_per_trigger is None else int(args.max_offsets_per_trigger)
        ),
        shuffle_partitions=args.shuffle_partitions,
        max_future_seconds=args.max_future,
        security=security,
        connect_timeout_s=args.connect_timeout,
        dedupe_window=args.dedupe_window,
        period=PERIODS[args.period],
        db_url=None if db_url == DB_OFF else db_url,
        kafka_retry_timeout_s=args.kafka_retry_timeout,
        db_retry_timeout_s=args.db_retry_timeout,
        state_store=args.state_store,
        alerts_topic=alerts_topic,
        alert_rule=rule,
    )
