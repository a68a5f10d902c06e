"""How far the counts are behind the topic: records not yet counted, and how long ago the
oldest of them arrived. The job's database knows where its last batch ended (the end
offsets of its progress row); only Kafka knows where the topic ends now.

The probe never makes the page wait long or fail: Kafka is asked with short timeouts, and
after a failure it is left alone for ``RETRY_AFTER_S`` (the page says it is unreachable).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

Offsets = dict[str, dict[str, int]]
RETRY_AFTER_S = 30.0
TIMEOUT_MS = 2000


@dataclass(frozen=True)
class Lag:
    records: int | None  # None: unknown, ``error`` says why
    seconds: float | None  # age of the oldest record not counted yet; 0 when none is
    error: str | None = None


def records_behind(counted: Offsets, latest: Offsets) -> int:
    """Records on the topic past the counted offsets (a new partition counts from 0)."""
    return sum(
        max(end - counted.get(topic, {}).get(partition, 0), 0)
        for topic, parts in latest.items()
        for partition, end in parts.items()
    )


class LagProbe:
    """Asks Kafka (plaintext, as the local broker and the Docker one serve it) for the
    end offsets of the job's topic and the time of its oldest uncounted record."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._consumer: Any = None
        self._failed_at: float | None = None
        self._failure = ""
        self._lock = threading.Lock()  # the dashboard serves requests on several threads

    def measure(self, counted: Offsets, now: datetime | None = None) -> Lag:
        now = now or datetime.now(timezone.utc)
        with self._lock:
            if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER_S:
                return Lag(None, None, self._failure)
            try:
                return self._measure(counted, now)
            except Exception as exc:  # any Kafka client failure is one sentence on the page
                self._close()
                self._failed_at = time.monotonic()
                self._failure = (
                    f"Kafka at {self.bootstrap_servers} did not answer ({type(exc).__name__})"
                )
                return Lag(None, None, self._failure)

    def _measure(self, counted: Offsets, now: datetime) -> Lag:
        from kafka import KafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=TIMEOUT_MS + 1000,
                bootstrap_timeout_ms=TIMEOUT_MS,
            )
        self._failed_at = None
        latest: Offsets = {}
        positions: dict[Any, int] = {}
        for topic in counted:
            partitions = self._consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            ends = self._consumer.end_offsets(tps, timeout_ms=TIMEOUT_MS)
            latest[topic] = {str(tp.partition): end for tp, end in ends.items()}
            for tp, end in ends.items():
                start = counted[topic].get(str(tp.partition), 0)
                if end > start:
                    positions[tp] = start
        behind = records_behind(counted, latest)
        if not positions:
            return Lag(behind, 0.0)
        oldest = self._oldest_timestamp_ms(positions)
        seconds = None if oldest is None else max(now.timestamp() - oldest / 1000, 0.0)
        return Lag(behind, seconds)

    def _oldest_timestamp_ms(self, positions: dict[Any, int]) -> int | None:
        """The Kafka timestamp of the first uncounted record of each lagging partition."""
        consumer = self._consumer
        consumer.assign(list(positions))
        for tp, offset in positions.items():
            consumer.seek(tp, offset)
        first: dict[Any, int] = {}
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while len(first) < len(positions) and time.monotonic() < deadline:
            for tp, records in consumer.poll(timeout_ms=200).items():
                if records and tp not in first:
                    first[tp] = records[0].timestamp
                    consumer.pause(tp)
        consumer.resume(*positions)
        return min(first.values()) if first else None

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close()
            finally:
                self._consumer = None
