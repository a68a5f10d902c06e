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
import re
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
    """Kafka did not answer within the connect timeout, refused our credentials, or
    presented a TLS certificate this client cannot accept."""


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


# Python's ssl module: "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:
# certificate has expired (_ssl.c:1006)"; the reason is OpenSSL's verify error text.
_VERIFY_FAILED = re.compile(r"certificate verify failed: (?P<reason>.+?)\.?\s*\(_ssl\.c:\d+\)")
_HANDSHAKE_FAILED = re.compile(r"Handshake failed: (?P<reason>.+?)\s*(?:\(_ssl\.c:\d+\))?$")


def tls_failure_kind(reason: str) -> str:
    """``expired``, ``not_yet_valid``, ``hostname``, ``untrusted`` or ``other``, from the
    verify error OpenSSL gives Python's ssl module (kafka-python's TLS)."""
    lowered = reason.lower()
    if "has expired" in lowered:
        return "expired"
    if "not yet valid" in lowered:
        return "not_yet_valid"
    if "mismatch" in lowered:
        return "hostname"
    if "issuer" in lowered or "self-signed" in lowered or "self signed" in lowered:
        return "untrusted"
    return "other"


def tls_failed_message(connection: KafkaConnection, reason: str, verify: bool) -> str:
    """One line that says what was wrong with the broker's certificate, and who can fix it.

    ``verify`` is False for a handshake that failed before any certificate was judged
    (typically a TLS client on a listener that does not speak TLS).
    """
    where = f"Kafka at {connection.bootstrap_servers}"
    cafile = connection.ssl_cafile
    if not verify:
        return (
            f"the TLS handshake with {where} failed ({reason}). Check that this address is a "
            "TLS listener (for one without TLS use --security-protocol PLAINTEXT or "
            "SASL_PLAINTEXT) and that --ssl-cafile / KAFKA_SSL_CAFILE is the CA that signed "
            "its certificate."
        )
    kind = tls_failure_kind(reason)
    if kind == "expired":
        return (
            f"{where} presented a TLS certificate that has expired ({reason}). The broker's "
            "operator must renew it (if the date looks wrong, check this machine's clock); "
            "do not turn certificate verification off."
        )
    if kind == "not_yet_valid":
        return (
            f"{where} presented a TLS certificate that is not valid yet ({reason}). Check this "
            "machine's clock, or wait until the certificate's start date."
        )
    if kind == "hostname":
        return (
            f"{where} presented a TLS certificate that was not issued for this address "
            f"({reason}). Connect with a host name the certificate lists "
            "(--bootstrap-servers), or have the certificate reissued with this name."
        )
    trusted = f"the CA in {cafile}" if cafile else "this machine's CA certificates"
    if kind == "untrusted":
        return (
            f"{where} presented a TLS certificate that is not trusted: it is not signed by "
            f"{trusted} ({reason}). Pass the CA certificate (PEM) that signed the broker's "
            "certificate with --ssl-cafile / KAFKA_SSL_CAFILE."
        )
    return (
        f"{where} presented a TLS certificate that was not accepted ({reason}; trusted: "
        f"{trusted}). Check the broker's certificate and --ssl-cafile / KAFKA_SSL_CAFILE."
    )


class _AuthFailureWatch(logging.Handler):
    """Notices authentication and TLS failures, which kafka-python only logs while it retries.

    Brokers answer a wrong SCRAM password by closing the connection, and kafka-python
    3.0 often reports just "socket disconnected". A connection lost *after* the broker's
    version was negotiated (so Kafka is reachable and answering) but before it was ready
    can only have failed in the SASL step; two of those in a row count as a refusal.

    A certificate that fails verification fails every handshake the same way, so the
    first one settles it: retrying until the connect timeout and then blaming an
    unreachable broker would send the user looking in the wrong place. Other handshake
    failures (no TLS on that port, a cut connection) count after two in a row.
    """

    def __init__(self, sasl: bool) -> None:
        super().__init__(level=logging.WARNING)
        self.sasl = sasl
        self.lost_during_auth = 0
        self.handshakes_failed = 0
        self.failure: str | None = None
        self.tls_failure: tuple[str, bool] | None = None  # (reason, certificate judged)

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        verify = _VERIFY_FAILED.search(message)
        if verify:
            self.tls_failure = (f"certificate verify failed: {verify.group('reason')}", True)
            return
        handshake = _HANDSHAKE_FAILED.search(message)
        if handshake and "Connection failed" in message:
            self.handshakes_failed += 1
            if self.handshakes_failed >= 2:
                self.tls_failure = (handshake.group("reason"), False)
        elif "AuthenticationFailed" in message or "Authentication failed" in message:
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
            if watch.tls_failure:
                raise BrokerUnreachableError(tls_failed_message(connection, *watch.tls_failure))
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
        name = type(exc).__name__
        self.stats.errors[name] += 1
        if self.stats.errors[name] == 1:  # once per kind: the summary line has the counts
            log.error(
                "delivery failed: %s (further %s failures are counted, not logged)", exc, name
            )

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
        # After a fatal refusal kafka-python aborts the batches (their errbacks count them)
        # and flush raises "Future not done": the outcome is already in the stats.
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaTimeoutError as exc:
            log.error("flush did not complete in %.0fs: %s", timeout_s, exc)
        except KafkaError as exc:
            log.error("flush ended early: %s", exc)
            # The aborted batches' errbacks arrive from the sender thread; wait for them so
            # the summary counts every record as acknowledged or failed.
            deadline = time.monotonic() + timeout_s
            while self.stats.pending and time.monotonic() < deadline:
                time.sleep(0.05)  # poll interval, bounded by the deadline

    def close(self) -> None:
        try:
            self._producer.close(timeout=5)
        except KafkaError as exc:  # the same aborted batches, seen again by close's flush
            log.debug("close: %s", exc)
