"""Kafka from a test's side: free ports, topics, plain clients that write and read back, and
the Bitnami and official images' ways of turning their environment into broker settings."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from services.kafka import free_port as free_port  # the tests' one import for Kafka


def create_topic(
    bootstrap_servers: str,
    topic: str,
    partitions: int = 3,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create ``topic`` and wait until every partition has a leader.

    The brokers do not create topics on first use, and a producer or job started before the
    partitions have leaders would see an unknown topic. ``configs``: topic settings
    (``{"max.message.bytes": "200"}``).
    """
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.create_topics(
            {topic: {"num_partitions": partitions, "configs": dict(configs or {})}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def read_topic(bootstrap_servers: str, topic: str, expected: int, timeout_s: float = 60) -> list:
    """Every record on ``topic``, read with a plain kafka-python consumer (no group).

    Polls until ``expected`` records arrived or ``timeout_s`` passed; tests and benchmarks
    use it to compute the truth independently of the Spark job.
    """
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    records: list = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def produce_raw(
    bootstrap_servers: str,
    topic: str,
    values: Iterable[bytes | None],
    partition: int | None = None,
) -> int:
    """Publish ``values`` with a plain kafka-python producer (not the project's) and wait.

    Without ``partition``, kafka-python's sticky partitioner puts unkeyed records on one
    partition it picks at random: a test that needs them on a given one says which.
    """
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024
    )
    futures = [producer.send(topic, value=v, partition=partition) for v in values]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    producer.close()
    return len(futures)


def produce_with_metadata(
    bootstrap_servers: str, topic: str, values: list[bytes | None], **config: object
) -> list[tuple[int, int]]:
    """Publish ``values`` with a plain kafka-python producer; their (partition, offset).

    Records are keyed (a null value needs a key) and spread over partitions by the key.
    """
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024, **config
    )
    futures = [producer.send(topic, key=f"k{i}".encode(), value=v) for i, v in enumerate(values)]
    producer.flush()
    placed = [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    producer.close()
    return placed


def properties_from_bitnami_env(environment: Mapping[str, str]) -> dict[str, str]:
    """server.properties the way the Bitnami Kafka image derives it from its environment.

    ``KAFKA_CFG_<NAME>`` becomes ``<name>`` in lowercase with ``_`` as ``.``
    (``KAFKA_CFG_NODE_ID`` -> ``node.id``); other variables are not broker properties.
    """
    prefix = "KAFKA_CFG_"
    return {
        key[len(prefix) :].lower().replace("_", "."): str(value)
        for key, value in environment.items()
        if key.startswith(prefix)
    }


# Variables the apache/kafka image reads for its JVM and logging, not broker settings
# (KafkaDockerWrapper's ExcludeServerPropsEnv).
APACHE_NOT_SETTINGS = frozenset(
    {
        "KAFKA_VERSION",
        "KAFKA_HEAP_OPTS",
        "KAFKA_LOG4J_OPTS",
        "KAFKA_OPTS",
        "KAFKA_JMX_OPTS",
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "KAFKA_GC_LOG_OPTS",
        "KAFKA_LOG4J_ROOT_LOGLEVEL",
        "KAFKA_LOG4J_LOGGERS",
        "KAFKA_TOOLS_LOG4J_LOGLEVEL",
        "KAFKA_JMX_HOSTNAME",
    }
)


def properties_from_apache_env(environment: Mapping[str, str]) -> dict[str, str]:
    """server.properties the way the official apache/kafka image derives it.

    Every ``KAFKA_<NAME>`` but the JVM and logging variables: ``KAFKA_`` removed, lowercase,
    ``_`` -> ``.``, then ``...`` -> ``-`` and ``..`` -> ``_`` (so a property's ``.`` is
    written ``_``, its ``_`` ``__`` and its ``-`` ``___``).
    """
    properties = {}
    for key, value in environment.items():
        if key.startswith("KAFKA_") and key not in APACHE_NOT_SETTINGS:
            name = key.replace("KAFKA_", "").lower().replace("_", ".")
            properties[name.replace("...", "-").replace("..", "_")] = str(value)
    return properties
