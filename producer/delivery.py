"""Publishing records to Kafka with every send accounted for.

``flush()`` only says the client stopped waiting, not that the broker stored anything.
So each send registers callbacks that count the broker's acknowledgement or the final
error, and the run's exit status comes from those counts. Settings follow Kafka's
durability advice: ``acks=all`` with idempotence, so retries after a broker hiccup
neither lose nor duplicate records.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from producer.config import KafkaConnection, ProducerConfig
from producer.events import LoginRecord

log = logging.getLogger(__name__)


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


def _connection_error(connection: KafkaConnection, exc: Exception) -> BrokerUnreachableError:
    name = type(exc).__name__
    if "Authentication" in name or "SaslAuthentication" in str(exc):
        return BrokerUnreachableError(auth_failed_message(connection, exc))
    return BrokerUnreachableError(unreachable_message(connection, exc))


def ensure_topic(connection: KafkaConnection, topic: str, partitions: int) -> bool:
    """Create ``topic`` unless it exists; True if it was created.

    The replication factor is left to the broker (``default.replication.factor``), which
    is 1 on the single-node setups here and stays right on real clusters.
    """
    try:
        admin = KafkaAdminClient(**connection.kafka_python_options())
    except (KafkaTimeoutError, KafkaError, OSError) as exc:
        raise _connection_error(connection, exc) from exc
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


class KafkaPythonPublisher:
    """:class:`Publisher` on kafka-python, the project's default client."""

    def __init__(self, config: ProducerConfig) -> None:
        self.stats = DeliveryStats()
        self.topic = config.topic
        try:
            self._producer = KafkaProducer(
                acks="all",
                enable_idempotence=True,
                compression_type=None if config.compression == "none" else config.compression,
                linger_ms=config.linger_ms,
                batch_size=config.batch_size,
                **config.kafka.kafka_python_options(),
            )
        except (KafkaTimeoutError, KafkaError, OSError) as exc:
            raise _connection_error(config.kafka, exc) from exc

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
            future = self._producer.send(self.topic, key=record.key, value=record.value)
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


@contextlib.contextmanager
def quiet_kafka_logs() -> Iterator[None]:
    """Hide kafka-python's per-attempt errors while it retries the bootstrap.

    The retries are expected (the broker may still be starting); if they run out, the
    caller prints one clear message instead of a page of ECONNREFUSED.
    """
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        kafka_log.setLevel(level)


def open_publisher(config: ProducerConfig) -> Publisher:
    """The publisher for ``config.client``, connected, with the topic in place."""
    log.info(
        "connecting to Kafka at %s (retrying for up to %gs)",
        config.kafka.bootstrap_servers,
        config.kafka.connect_timeout_s,
    )
    with quiet_kafka_logs():
        ensure_topic(config.kafka, config.topic, config.partitions)
        if config.client == "confluent":
            from producer.confluent_delivery import ConfluentPublisher

            return ConfluentPublisher(config)
        return KafkaPythonPublisher(config)
