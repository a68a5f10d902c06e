"""The optional librdkafka client (``--client confluent``, ``pip install '.[confluent]'``).

kafka-python is pure Python and, at a few tens of thousands of records per second, the
producer's ceiling on a small machine; librdkafka does the batching, compression and I/O in
C threads. Same settings, same accounting: every record's delivery report is counted.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from producer.config import KafkaConnection, ProducerConfig
from producer.delivery import BrokerUnreachableError, DeliveryStats, unreachable_message
from producer.events import LoginRecord

log = logging.getLogger(__name__)

# Serve delivery reports every this many sends, so callbacks keep pace with production.
POLL_EVERY = 1024


def librdkafka_config(connection: KafkaConnection) -> dict[str, Any]:
    """librdkafka's names for the connection settings."""
    config: dict[str, Any] = {
        "bootstrap.servers": connection.bootstrap_servers,
        "security.protocol": connection.security_protocol,
    }
    if connection.security_protocol.startswith("SASL"):
        config.update({
            "sasl.mechanisms": connection.sasl_mechanism,
            "sasl.username": connection.sasl_username,
            "sasl.password": connection.sasl_password,
        })  # fmt: skip
    if connection.ssl_cafile:
        config["ssl.ca.location"] = connection.ssl_cafile
    return config


class ConfluentPublisher:
    """:class:`~producer.delivery.Publisher` on confluent-kafka (librdkafka)."""

    def __init__(self, config: ProducerConfig) -> None:
        self.stats = DeliveryStats()
        self.topic = config.topic
        self._sent_since_poll = 0
        self._producer = Producer({
            **librdkafka_config(config.kafka),
            "acks": "all",
            "enable.idempotence": True,
            "compression.type": config.compression,
            "linger.ms": config.linger_ms,
            "batch.size": config.batch_size,
            "queue.buffering.max.messages": 500_000,
        })  # fmt: skip
        try:
            # librdkafka connects lazily; ask for metadata to fail fast like kafka-python.
            self._producer.list_topics(topic=self.topic, timeout=config.kafka.connect_timeout_s)
        except KafkaException as exc:
            raise BrokerUnreachableError(unreachable_message(config.kafka, exc)) from exc

    def _delivered(self, error: KafkaError | None, message: Any) -> None:
        if error is None:
            self.stats.acknowledged += 1
            self.stats.bytes_acknowledged += len(message.value())
        else:
            self.stats.failed += 1
            self.stats.errors[error.name()] += 1
            log.error("delivery failed: %s", error)

    def send(self, record: LoginRecord) -> None:
        self.stats.sent += 1
        while True:
            try:
                self._producer.produce(
                    self.topic, key=record.key, value=record.value, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(0.05)  # local queue full: let deliveries drain it
        self._sent_since_poll += 1
        if self._sent_since_poll >= POLL_EVERY:
            self._producer.poll(0)
            self._sent_since_poll = 0

    def flush(self, timeout_s: float) -> None:
        remaining = self._producer.flush(timeout_s)
        if remaining:
            log.error("%d records still undelivered after %.0fs", remaining, timeout_s)

    def close(self) -> None:
        self._producer.flush(5)
