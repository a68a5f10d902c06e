"""``python -m producer``: generate login events and publish them, then report what the broker took.

Exit status: 0 when every event was acknowledged (also after Ctrl-C or SIGTERM, which
stop generation and flush what was sent), 1 when some deliveries failed, 2 for usage
errors, 3 when Kafka is unreachable or refuses our credentials.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import IO

from producer.config import ProducerConfig, parse_config
from producer.delivery import (
    BrokerUnreachableError,
    DeliveryStats,
    KafkaPythonPublisher,
    Publisher,
    ensure_topic,
)
from producer.delivery import log as delivery_log
from producer.events import Burst, LoginEventGenerator, LoginRecord
from producer.progress import Progress, make_progress

log = logging.getLogger("producer")

EXIT_OK, EXIT_DELIVERY_FAILED, EXIT_UNREACHABLE = 0, 1, 3
FLUSH_TIMEOUT_S = 150.0  # longer than kafka-python's delivery timeout (120 s)
PROGRESS_EVERY = 512  # events between progress updates: cheap enough, smooth enough
# Live mode sleeps only when ahead of schedule by more than this; below it, sleeping
# costs more than it saves.
MIN_SLEEP_S = 0.002


@dataclass
class RunResult:
    stats: DeliveryStats
    seconds: float
    stopped_by: str | None


class StopFlag:
    """Set by SIGINT/SIGTERM; a second signal falls back to the default behaviour."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name: str | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.event.set()
        signal.signal(signum, signal.SIG_DFL)
        log.warning("%s received: stopping, flushing what was sent", self.signal_name)


def send_as_fast_as_possible(
    records: Iterator[LoginRecord], publisher: Publisher, stop: StopFlag, progress: Progress
) -> None:
    """Backfill: hand every record to the client; batching and linger do the pacing."""
    stats = publisher.stats
    stopped = stop.event.is_set
    for n, record in enumerate(records, 1):
        publisher.send(record)
        if n % PROGRESS_EVERY == 0:
            if stopped():
                return
            progress.update(stats)


def send_paced(
    records: Iterator[LoginRecord],
    publisher: Publisher,
    stop: StopFlag,
    progress: Progress,
    rate: float,
    count: int | None,
    duration_s: float | None,
) -> None:
    """Live mode: ``rate`` events per second, each stamped when it is sent.

    With ``duration_s``, only events due before the deadline are sent (``--rate 10
    --duration 5s`` sends 50, not 51), and none once the deadline has passed, however far
    behind a rate too high for the machine has left the loop.
    """
    started = time.monotonic()
    deadline = None if duration_s is None else started + duration_s
    sent = 0
    while not stop.event.is_set() and (count is None or sent < count):
        now = time.monotonic()
        due = started + sent / rate
        if deadline is not None and (now >= deadline or due >= deadline):
            return
        ahead = due - now
        if ahead > MIN_SLEEP_S and stop.event.wait(ahead):
            return
        publisher.send(next(records))
        sent += 1
        if sent % 64 == 0:
            progress.update(publisher.stats)


def produce(config: ProducerConfig, publisher: Publisher, stop: StopFlag) -> RunResult:
    """Generate and send according to ``config``; always flushes before returning."""
    log.info("generating with --seed %d (pass it again to replay the same events)", config.seed)
    generator = LoginEventGenerator(
        seed=config.seed,
        users=config.users,
        failure_rate=config.failure_rate,
        attack_probability=config.attack_probability,
    )
    total = config.count if config.backfill and not config.follow else None
    if not config.backfill and config.duration_s is None:
        total = config.count
    progress = make_progress(config.progress, total, interval_s=config.progress_interval_s)
    bursts = open_bursts_file(config, generator)
    started = time.monotonic()
    try:
        if config.backfill:
            assert config.start_ms is not None and config.end_ms is not None
            assert config.count is not None
            records = generator.backfill(config.start_ms, config.end_ms, config.count)
            send_as_fast_as_possible(records, publisher, stop, progress)
        if not config.backfill or (config.follow and not stop.event.is_set()):
            live_count = None if config.backfill else config.count
            send_paced(
                generator.live(),
                publisher,
                stop,
                progress,
                config.rate,
                live_count,
                config.duration_s,
            )
    finally:
        publisher.flush(FLUSH_TIMEOUT_S)
        progress.close(publisher.stats)
        if bursts is not None:
            bursts.close()
    return RunResult(publisher.stats, time.monotonic() - started, stop.signal_name)


def open_bursts_file(config: ProducerConfig, generator: LoginEventGenerator) -> IO[str] | None:
    """With ``--bursts-file``, have ``generator`` append each burst to it as a JSON line.

    Appended and flushed line by line, so a run that is stopped keeps the bursts it made,
    and runs on one topic can share one file.
    """
    if config.bursts_file is None:
        return None
    config.bursts_file.parent.mkdir(parents=True, exist_ok=True)
    out = config.bursts_file.open("a", encoding="utf-8")

    def record(burst: Burst) -> None:
        out.write(json.dumps(burst.as_json()) + "\n")
        out.flush()

    generator.on_burst = record
    return out


def summary_line(config: ProducerConfig, result: RunResult) -> str:
    stats = result.stats
    rate = stats.acknowledged / result.seconds if result.seconds > 0 else 0.0
    megabytes = stats.bytes_acknowledged / result.seconds / 1e6 if result.seconds > 0 else 0.0
    line = (
        f"Sent {stats.sent:,} login events to topic '{config.topic}' at "
        f"{config.kafka.bootstrap_servers}: {stats.acknowledged:,} acknowledged, "
        f"{stats.failed:,} failed in {result.seconds:.2f} s "
        f"({rate:,.0f} events/s, {megabytes:.1f} MB/s)."
    )
    if stats.pending:
        line += f" {stats.pending:,} never answered."
    if stats.errors:
        line += " Errors: " + ", ".join(f"{k} x{v}" for k, v in stats.errors.most_common()) + "."
    if result.stopped_by:
        line = f"Stopped by {result.stopped_by}. {line}"
    return line


def write_summary_json(config: ProducerConfig, result: RunResult) -> None:
    if config.summary_json is None:
        return
    stats = result.stats
    config.summary_json.parent.mkdir(parents=True, exist_ok=True)
    config.summary_json.write_text(
        json.dumps(
            {
                "topic": config.topic,
                "seed": config.seed,
                "sent": stats.sent,
                "acknowledged": stats.acknowledged,
                "failed": stats.failed,
                "bytes_acknowledged": stats.bytes_acknowledged,
                "seconds": round(result.seconds, 3),
                "errors": dict(stats.errors),
                "stopped_by": result.stopped_by,
            },
            indent=2,
        )
        + "\n"
    )


def open_publisher(config: ProducerConfig) -> Publisher:
    """The publisher for ``config.client``, connected, with the topic in place.

    Here rather than in ``delivery`` so that ``confluent_delivery`` (which builds on
    ``delivery``) is imported only when asked for: confluent-kafka is an optional extra.
    """
    delivery_log.info(
        "connecting to Kafka at %s (retrying for up to %gs)",
        config.kafka.bootstrap_servers,
        config.kafka.connect_timeout_s,
    )
    ensure_topic(config.kafka, config.topic, config.partitions)
    if config.client == "confluent":
        from producer.confluent_delivery import ConfluentPublisher

        return ConfluentPublisher(config)
    return KafkaPythonPublisher(config)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    config = parse_config(argv)
    stop = StopFlag()
    stop.install()
    try:
        publisher = open_publisher(config)
    except BrokerUnreachableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except ImportError as exc:
        print(
            f"error: --client {config.client} is not installed ({exc}). "
            "Install it with: pip install '.[confluent]'",
            file=sys.stderr,
        )
        return 2
    try:
        result = produce(config, publisher, stop)
    finally:
        publisher.close()
    print(summary_line(config, result), flush=True)
    write_summary_json(config, result)
    ok = result.stats.failed == 0 and result.stats.pending == 0
    return EXIT_OK if ok else EXIT_DELIVERY_FAILED
