"""Publishing records to Kafka with every send accounted for.

``flush()`` only says the client stopped waiting, not that the broker stored anything.
So each send registers callbacks that count the broker's acknowledgement or the final
error, and the run's exit status comes from those counts. Settings follow Kafka's
durability advice: ``acks=all`` with idempotence, so retries after a broker hiccup
neither lose nor duplicate records.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from producer.config import KafkaConnection, ProducerConfig
from producer.events import LoginRecord

log = logging.getLogger(__name__)

ATTEMPT_TIMEOUT_S = 2.0  # one bootstrap attempt; attempts repeat until --connect-timeout


class BrokerUnreachableError(RuntimeError):
    """Kafka did not answer within the connect timeout, or refused our credentials."""


@dataclass
class DeliveryStats:
    """Counts of what happened to the records handed to a publisher."""

    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    bytes_acknowledged: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def pending(self) -> int:
        return self.sent - self.acknowledged - self.failed


class Publisher(Protocol):
    """What the run loop needs from a Kafka client; one implementation per library."""

    stats: DeliveryStats

    def send(self, record: LoginRecord) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...


def unreachable_message(connection: KafkaConnection, detail: object) -> str:
    return (
        f"Kafka at {connection.bootstrap_servers} did not answer within "
        f"{connection.connect_timeout_s:g}s ({detail}). Start a broker (`make local-up`, or "
        "`make up` with Docker) or point --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS at one."
    )


def auth_failed_message(connection: KafkaConnection, detail: object) -> str:
    return (
        f"Kafka at {connection.bootstrap_servers} refused to authenticate user "
        f"{connection.sasl_username!r} with {connection.sasl_mechanism} ({detail}). "
        "Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)."
    )


class _AuthFailureWatch(logging.Handler):
    """Notices authentication failures, which kafka-python only logs while it retries.

    Brokers answer a wrong SCRAM password by closing the connection, and kafka-python
    3.0 often reports just "socket disconnected". A connection lost *after* the broker's
    version was negotiated (so Kafka is reachable and answering) but before it was ready
    can only have failed in the SASL step; two of those in a row count as a refusal.
    """

    def __init__(self, sasl: bool) -> None:
        super().__init__(level=logging.WARNING)
        self.sasl = sasl
        self.lost_during_auth = 0
        self.failure: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "AuthenticationFailed" in message or "Authentication failed" in message:
            self.failure = message
        elif self.sasl and "Connection lost" in message and "broker_version=(" in message:
            self.lost_during_auth += 1
            if self.lost_during_auth >= 2:
                self.failure = "the broker closed the connection during SASL authentication"


Client = TypeVar("Client")


def connect_with_retry(connection: KafkaConnection, make: Callable[..., Client]) -> Client:
    """``make(**kafka_options)``, retried with backoff until the connect timeout.

    Each attempt gets a short bootstrap timeout so that a refused password is reported
    after seconds, not after the whole timeout. kafka-python's own per-attempt errors are
    kept off the console; the caller gets one clear :class:`BrokerUnreachableError`.
    """
    deadline = time.monotonic() + connection.connect_timeout_s
    kafka_log = logging.getLogger("kafka")
    watch = _AuthFailureWatch(sasl=connection.security_protocol.startswith("SASL"))
    saved = kafka_log.level, kafka_log.propagate
    kafka_log.setLevel(logging.WARNING)
    kafka_log.propagate = False
    kafka_log.addHandler(watch)
    delay = 0.25
    try:
        while True:
            attempt_s = max(0.5, min(deadline - time.monotonic(), ATTEMPT_TIMEOUT_S))
            options = {
                **connection.kafka_python_options(),
                "bootstrap_timeout_ms": int(attempt_s * 1000),
            }
            try:
                return make(**options)
            except (KafkaError, OSError) as exc:
                last_error: Exception = exc
            if watch.failure:
                raise BrokerUnreachableError(auth_failed_message(connection, watch.failure))
            if time.monotonic() + delay >= deadline:
                raise BrokerUnreachableError(unreachable_message(connection, last_error))
            time.sleep(delay)  # backoff between attempts, bounded by the deadline
            delay = min(delay * 2, 4.0)
    finally:
        kafka_log.removeHandler(watch)
        kafka_log.setLevel(saved[0])
        kafka_log.propagate = saved[1]


def ensure_topic(connection: KafkaConnection, topic: str, partitions: int) -> bool:
    """Create ``topic`` unless it exists; True if it was created.

    The replication factor is left to the broker (``default.replication.factor``), which
    is 1 on the single-node setups here and stays right on real clusters.
    """
    admin = connect_with_retry(connection, KafkaAdminClient)
    try:
        if topic in admin.list_topics():
            return False
        try:
            admin.create_topics({topic: {"num_partitions": partitions}}, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            return False
        log.info("created topic %s with %d partitions", topic, partitions)
        return True
    finally:
        admin.close()


class KeyPartitions:
    """The partition of each key, as kafka-python's default partitioner picks it, memoized.

    Same rule as the Java client (murmur2 of the key, modulo the partition count), so one
    user's events land in one partition whichever client wrote them. kafka-python computes
    murmur2 in pure Python for every record, a fifth of the producer's time; the simulated
    users are a few thousand keys, so each is hashed once.
    """

    MAX_KEYS = 200_000

    def __init__(self, partitions: Iterable[int]) -> None:
        self.partitions = sorted(partitions)
        self._cache: dict[bytes, int] = {}

    def __call__(self, key: bytes) -> int:
        partition = self._cache.get(key)
        if partition is None:
            index = (murmur2(key) & 0x7FFFFFFF) % len(self.partitions)
            partition = self.partitions[index]
            if len(self._cache) < self.MAX_KEYS:
                self._cache[key] = partition
        return partition


class KafkaPythonPublisher:
    """:class:`Publisher` on kafka-python, the project's default client."""

    def __init__(self, config: ProducerConfig) -> None:
        self.stats = DeliveryStats()
        self.topic = config.topic
        self._producer = connect_with_retry(
            config.kafka,
            functools.partial(
                KafkaProducer,
                acks="all",
                enable_idempotence=True,
                compression_type=None if config.compression == "none" else config.compression,
                linger_ms=config.linger_ms,
                batch_size=config.batch_size,
                # Per-record client metrics cost time on every send and nothing reads them.
                metrics_enabled=False,
            ),
        )
        self._partition_of = KeyPartitions(self._producer.partitions_for(self.topic))

    def _acknowledged(self, metadata: Any) -> None:
        self.stats.acknowledged += 1
        self.stats.bytes_acknowledged += metadata.serialized_value_size

    def _failed(self, exc: BaseException) -> None:
        self.stats.failed += 1
        self.stats.errors[type(exc).__name__] += 1
        log.error("delivery failed: %s", exc)

    def send(self, record: LoginRecord) -> None:
        self.stats.sent += 1
        try:
            future = self._producer.send(
                self.topic,
                key=record.key,
                value=record.value,
                partition=self._partition_of(record.key),
            )
        except KafkaError as exc:
            self._failed(exc)
            return
        future.add_callback(self._acknowledged)
        future.add_errback(self._failed)

    def flush(self, timeout_s: float) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError as exc:
            log.error("flush did not complete in %.0fs: %s", timeout_s, exc)

    def close(self) -> None:
        self._producer.close(timeout=5)


def open_publisher(config: ProducerConfig) -> Publisher:
    """The publisher for ``config.client``, connected, with the topic in place."""
    log.info(
        "connecting to Kafka at %s (retrying for up to %gs)",
        config.kafka.bootstrap_servers,
        config.kafka.connect_timeout_s,
    )
    ensure_topic(config.kafka, config.topic, config.partitions)
    if config.client == "confluent":
        from producer.confluent_delivery import ConfluentPublisher

        return ConfluentPublisher(config)
    return KafkaPythonPublisher(config)
