"""The bench broker's topics: created explicitly, filled by the project's own producer."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.kafka import LocalKafka


def create_topic(broker: LocalKafka, topic: str, partitions: int = 3) -> None:
    """Topics are created explicitly: the broker refuses to auto-create them."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.create_topics({topic: {"num_partitions": partitions}}, wait_for_metadata=True)
    finally:
        admin.close()


def backfill_range() -> tuple[int, int]:
    end = datetime.now(timezone.utc)
    return int((end - timedelta(days=730)).timestamp() * 1000), int(end.timestamp() * 1000)


def run_producer(broker: LocalKafka, topic: str, count: int, client: str, work: Path) -> dict:
    summary = work / f"producer-{topic}.json"
    command = [
        sys.executable, "-m", "producer", "--bootstrap-servers", broker.bootstrap_servers,
        "--topic", topic, "--months", "24", "--count", str(count), "--seed", "7",
        "--client", client, "--progress", "none", "--summary-json", str(summary),
        "--bursts-file", str(bursts_file(work, topic)),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=1800)
    return json.loads(summary.read_text())


def bursts_file(work: Path, topic: str) -> Path:
    """Where :func:`run_producer` has the producer record the bursts it made on ``topic``
    (the detector's ground truth)."""
    return work / f"bursts-{topic}.jsonl"


def has_confluent() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


def ensure_topic(broker: LocalKafka, topic: str, count: int, work: Path) -> str:
    """``topic`` with ``count`` events from the producer, unless an earlier step filled it."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        exists = topic in admin.list_topics()
    finally:
        admin.close()
    if not exists:
        run_producer(broker, topic, count, "confluent" if has_confluent() else "kafka-python",
                     work)  # fmt: skip
    return topic


def read_records(broker: LocalKafka, topic: str) -> list:
    """Every record on ``topic`` up to its end offsets now, with a plain kafka-python
    consumer (no group)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=None,
                             enable_auto_commit=False)  # fmt: skip
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        records: list = []
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()
