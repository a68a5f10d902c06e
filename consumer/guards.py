"""Checks that turn a wrong setup into one clear error before (or instead of) counting:
Kafka reachable and the topic there (the same topic the checkpoint started on), the
checkpoint written for this query and used by no other job; and a failed query explained
in one line."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from pyspark.sql import SparkSession

from consumer.checkpoint_log import damaged
from consumer.errors import EXIT_CHECKPOINT, EXIT_FAILED, EXIT_KAFKA, JobError
from consumer.options import (
    APP_NAME,
    QUERY_CHECKPOINT,
    JobOptions,
)


@dataclass(frozen=True)
class TopicFacts:
    """What Kafka says about the topic when the job starts."""

    partitions: int
    topic_id: str  # Kafka's id of this incarnation of the topic (a new one when recreated)
    earliest: dict[int, int] = field(default_factory=dict)  # partition -> first offset kept


def check_kafka(spark: SparkSession, options: JobOptions) -> TopicFacts:
    """Fail fast, and clearly, if Kafka is unreachable, refuses us, or lacks the topic.

    Spark's Kafka source would otherwise retry for minutes or, for a missing topic, run
    with empty batches and print an empty table. Uses the Kafka client that the connector
    puts on the driver's classpath. Returns the topic's partition count, its id and the
    earliest offset of each partition (above 0 where retention deleted records).
    """
    jvm, props, seconds, wait_s = _admin_settings(spark, options)
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
        names = admin.listTopics().names().get(wait_s, seconds)
        if not names.contains(options.topic):
            raise missing_topic(options, [str(n) for n in names.toArray()])
        description = admin.describeTopics(jvm.java.util.List.of(options.topic))
        topic = description.allTopicNames().get(wait_s, seconds).get(options.topic)
        partitions = [int(p.partition()) for p in topic.partitions().toArray()]
        earliest_spec = jvm.org.apache.kafka.clients.admin.OffsetSpec.earliest()
        request = jvm.java.util.HashMap()
        for partition in partitions:
            tp = jvm.org.apache.kafka.common.TopicPartition(options.topic, partition)
            request.put(tp, earliest_spec)
        listed = admin.listOffsets(request).all().get(wait_s, seconds)
        earliest = {
            int(tp.partition()): int(listed.get(tp).offset()) for tp in listed.keySet().toArray()
        }
        return TopicFacts(len(partitions), str(topic.topicId().toString()), earliest)
    except Exception as exc:  # py4j wraps Java exceptions; classify by their text
        if isinstance(exc, JobError):
            raise
        explained = explain_kafka_failure(str(exc), options)
        if explained is not None:
            raise explained from None
        raise
    finally:
        if admin is not None:
            admin.close()


def client_properties(spark: SparkSession, options: JobOptions, settings: dict[str, str]) -> Any:
    """``java.util.Properties`` for a Kafka Java client on the driver: the address and
    security of ``options``, then the client's own ``settings``."""
    jvm = spark.sparkContext._jvm  # py4j gateway: how PySpark code reaches JVM classes
    assert jvm is not None
    props = jvm.java.util.Properties()
    for key, value in {**options.kafka_properties(), **settings}.items():
        props.setProperty(key, value)
    return props


def _admin_settings(spark: SparkSession, options: JobOptions) -> tuple[Any, Any, Any, int]:
    """The JVM, an admin client's properties (timeouts from ``--connect-timeout``), the
    unit of the waits and how long to wait for an answer."""
    timeout_ms = str(options.connect_timeout_s * 1000)
    props = client_properties(
        spark, options, {"request.timeout.ms": timeout_ms, "default.api.timeout.ms": timeout_ms}
    )
    jvm = spark.sparkContext._jvm
    return jvm, props, jvm.java.util.concurrent.TimeUnit.SECONDS, options.connect_timeout_s + 5


def ensure_topic(spark: SparkSession, options: JobOptions, name: str) -> None:
    """Create topic ``name`` (the broker's default partitions and replicas) unless it exists.

    The brokers here do not create topics on first use, and a producer would wait for the
    missing topic's metadata instead of saying so.
    """
    jvm, props, seconds, wait_s = _admin_settings(spark, options)
    admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
    try:
        if admin.listTopics().names().get(wait_s, seconds).contains(name):
            return
        empty = jvm.java.util.Optional.empty()
        new_topic = jvm.org.apache.kafka.clients.admin.NewTopic(name, empty, empty)
        try:
            admin.createTopics(jvm.java.util.List.of(new_topic)).all().get(wait_s, seconds)
        except Exception as exc:  # py4j wraps Java exceptions; classify by their text
            if "TopicExistsException" not in str(exc):  # another job created it meanwhile
                raise JobError(
                    f"cannot create the alerts topic {name!r} on {options.bootstrap_servers} "
                    f"({str(exc).splitlines()[0][:200]}); create it, or pass another "
                    "--alerts-topic.",
                    EXIT_KAFKA,
                ) from None
        print(f"Created the alerts topic {name!r}.", flush=True)
    finally:
        admin.close()


def missing_topic(options: JobOptions, names: list[str]) -> JobError:
    """The topic is not on the broker: name the topics that are (internal ones left out)."""
    available = sorted(n for n in names if not n.startswith("__"))
    return JobError(
        f"topic {options.topic!r} does not exist on {options.bootstrap_servers} "
        f"(topics there: {', '.join(available) or 'none'}). Create it by running the "
        "producer (it creates the topic), or pass the right --topic / LOGINS_TOPIC.",
        EXIT_KAFKA,
    )


def explain_kafka_failure(text: str, options: JobOptions) -> JobError | None:
    """The one sentence for a failed first contact with Kafka, from the Java exception's
    text (py4j wraps it), or ``None`` when the text is not one this knows."""
    if "No resolvable bootstrap urls" in text:
        return JobError(
            f"no address of Kafka at {options.bootstrap_servers} resolves (DNS). Is the "
            "broker running (`make local-up`, or `make up` with Docker), and is "
            "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS right?",
            EXIT_KAFKA,
        )
    tls = explain_tls_failure(text, options)
    if tls is not None:
        return JobError(tls, EXIT_KAFKA)
    if "Authentication" in text or "SaslAuthentication" in text:
        return JobError(
            f"Kafka at {options.bootstrap_servers} rejected the credentials of "
            f"{options.security.username!r} ({options.security.mechanism}). Check "
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.",
            EXIT_KAFKA,
        )
    if "Timeout" in text or "timed out" in text:
        return JobError(
            f"Kafka at {options.bootstrap_servers} did not answer within "
            f"{options.connect_timeout_s}s. Is the broker running (`make local-up` or "
            "`make up`), and is --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS right?",
            EXIT_KAFKA,
        )
    return None


def retention_note(topic: str, earliest: dict[int, int], new_checkpoint: bool) -> str | None:
    """One line when records of ``topic`` are gone from Kafka (a partition's earliest offset
    is above 0), saying how many: history that a new checkpoint can no longer count."""
    gone = {p: o for p, o in sorted(earliest.items()) if o > 0}
    if not gone:
        return None
    where = ", ".join(f"partition {p} starts at offset {o:,}" for p, o in gone.items())
    consequence = (
        "this new checkpoint counts what is left, so its tables (and the database, whose "
        "rows it replaces) leave them out"
        if new_checkpoint
        else "this checkpoint counted those it had read before they went"
    )
    return (
        f"Note: the first {sum(gone.values()):,} records of {topic!r} are no longer in Kafka "
        f"(retention, or deleted): {where}; {consequence}."
    )


_CERT_EXPIRED = re.compile(r"CertificateExpiredException: (?P<detail>[^\n]+)")


_CERT_NOT_YET_VALID = re.compile(r"CertificateNotYetValidException: (?P<detail>[^\n]+)")


_CERT_NAME = re.compile(r"CertificateException: (?P<detail>No (?:subject alternative|name)[^\n]+)")


_HANDSHAKE = re.compile(r"SSLHandshakeException: (?P<detail>[^\n]+)")


def explain_tls_failure(text: str, options: JobOptions) -> str | None:
    """What was wrong with the broker's certificate, from the Java client's exception text.

    Kafka reports every failed TLS handshake as an ``SslAuthenticationException``; without
    this, the credentials message would blame a SASL user and password that a TLS-only
    setup does not even have. The JSSE cause underneath says whether the certificate was
    expired, for another name, or signed by a CA the job does not trust, and each has a
    different fix.
    """
    if "SslAuthenticationException" not in text and "SSLHandshakeException" not in text:
        return None
    where = f"Kafka at {options.bootstrap_servers}"
    cafile = options.security.ssl_cafile
    trusted = f"the CA in {cafile}" if cafile else "the JVM's default CA certificates"
    if match := _CERT_EXPIRED.search(text):
        until = match["detail"].replace("NotAfter:", "").strip()
        return (
            f"{where} presented a TLS certificate that has expired (valid until {until}). The "
            "broker's operator must renew it (if the date looks wrong, check this machine's "
            "clock); do not turn certificate verification off."
        )
    if match := _CERT_NOT_YET_VALID.search(text):
        since = match["detail"].replace("NotBefore:", "").strip()
        return (
            f"{where} presented a TLS certificate that is not valid yet (valid from {since}). "
            "Check this machine's clock, or wait until the certificate's start date."
        )
    if match := _CERT_NAME.search(text):
        return (
            f"{where} presented a TLS certificate that was not issued for this address "
            f"({match['detail'].strip()}). Connect with a host name the certificate lists "
            "(--bootstrap-servers), or have the certificate reissued with this name."
        )
    if "PKIX path building failed" in text or "unable to find valid certification path" in text:
        return (
            f"{where} presented a TLS certificate that is not trusted: it is not signed by "
            f"{trusted} (unable to find a valid certification path). Pass the CA certificate "
            "(PEM) that signed the broker's certificate with --ssl-cafile / KAFKA_SSL_CAFILE."
        )
    match = _HANDSHAKE.search(text)
    detail = match["detail"].strip() if match else "SSL handshake failed"
    return (
        f"the TLS handshake with {where} failed ({detail[:300]}). Check that this address is "
        "a TLS listener (for one without TLS use --security-protocol PLAINTEXT or "
        "SASL_PLAINTEXT) and that --ssl-cafile / KAFKA_SSL_CAFILE is the CA that signed "
        "its certificate."
    )


def checkpoint_marker(options: JobOptions) -> Path:
    """``pipeline.json``, next to Spark's own files in the checkpoint."""
    return Path(options.checkpoint_dir) / "pipeline.json"


def checkpoint_identity(options: JobOptions) -> dict[str, Any]:
    """What a checkpoint is only valid for; kept in :func:`checkpoint_marker`."""
    return {
        "job": APP_NAME,
        "topic": options.topic,
        "timezone": options.timezone,
        "deduplication": options.dedupe_window is not None,
        "period": options.period.key,
    }


# Settings a marker may lack because it was written before they existed, and what they were.
IDENTITY_BEFORE = {"period": "month"}


def check_checkpoint(options: JobOptions) -> None:
    """Refuse a checkpoint written for another topic, time zone, period or deduplication.

    Spark would resume from it without complaint and mix months of two time zones (or
    offsets of two topics) into one table, or fail deep in its state store when the
    deduplication step appears or disappears. Only files are read, so this runs before
    the Spark session starts and a wrong checkpoint is refused in a second.
    """
    identity = checkpoint_identity(options)
    marker = checkpoint_marker(options)
    if marker.exists():
        try:
            recorded = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise JobError(f"cannot read {marker}: {exc}", EXIT_CHECKPOINT) from None
        recorded = {**IDENTITY_BEFORE, **recorded}
        different = {k: (recorded.get(k), v) for k, v in identity.items() if recorded.get(k) != v}
        if different:
            detail = ", ".join(f"{k} {old!r} (now {new!r})" for k, (old, new) in different.items())
            raise JobError(
                f"the checkpoint {options.checkpoint_dir} belongs to another query: it was "
                f"started with {detail}. Use a new --checkpoint-dir, or delete this one to "
                "recount from the start of the topic.",
                EXIT_CHECKPOINT,
            )
        return
    existing = Path(options.checkpoint_dir)
    if existing.exists() and any(p.name != LOCK_FILE for p in existing.iterdir()):
        raise JobError(
            f"{options.checkpoint_dir} is not empty and was not written by this job. "
            "Use a new --checkpoint-dir.",
            EXIT_CHECKPOINT,
        )


def record_checkpoint_identity(
    options: JobOptions, topic_id: str | None = None, **recorded: Any
) -> None:
    """Written once Kafka has answered, so a run that never started claims no checkpoint.

    ``topic_id`` (Kafka's id of the topic) is added to a marker written before topic ids
    were recorded, and is kept as it was otherwise (see :func:`check_topic_id`).
    ``recorded``: facts kept for the reader (such as the state store), not compared.
    """
    marker = checkpoint_marker(options)
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        identity = {**checkpoint_identity(options), **recorded}
        if topic_id is not None:
            identity["topic_id"] = topic_id
        marker.write_text(json.dumps(identity, indent=2) + "\n")
        return
    existing = json.loads(marker.read_text())
    if topic_id is not None and "topic_id" not in existing:
        existing["topic_id"] = topic_id
        staged = marker.with_name(f".{marker.name}.tmp")
        staged.write_text(json.dumps(existing, indent=2) + "\n")
        staged.replace(marker)


def check_topic_id(options: JobOptions, topic_id: str) -> None:
    """Refuse a checkpoint started on an earlier topic of the same name.

    Spark tracks offsets, not topics: on a topic that was deleted and recreated it would
    resume at the old offsets, skipping the new topic's records below them (or fail when
    the new topic is shorter). Kafka gives every topic a new id when it is created.
    """
    marker = checkpoint_marker(options)
    if not marker.exists():
        return
    with contextlib.suppress(OSError, ValueError):
        recorded = json.loads(marker.read_text()).get("topic_id")
        if recorded is not None and recorded != topic_id:
            raise JobError(
                f"the checkpoint {options.checkpoint_dir} was started on another topic named "
                f"{options.topic!r}: it was deleted and created again since (topic id "
                f"{recorded}, now {topic_id}), so the checkpoint's offsets point at other "
                "records. To count the topic as it is now, use a new --checkpoint-dir.",
                EXIT_CHECKPOINT,
            )


LOCK_FILE = "pipeline.lock"


def lock_checkpoint(options: JobOptions) -> IO[str]:
    """Refuse a checkpoint that another running job uses; keep it for this process.

    Two jobs on one checkpoint would each plan batches into the same offset log. The lock is
    the operating system's (``flock`` on a file in the checkpoint), held by this process and
    released when it ends, however it ends: a job killed with SIGKILL leaves no stale lock.
    The caller keeps the returned file open for as long as the job runs.
    """
    folder = Path(options.checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    handle = (folder / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise JobError(
            f"the checkpoint {options.checkpoint_dir} is in use by another job ({holder}). "
            "Stop that job first, or give this one its own --checkpoint-dir.",
            EXIT_CHECKPOINT,
        ) from None
    handle.seek(0)
    handle.truncate()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {started}\n")
    handle.flush()
    return handle


# Spark's error conditions that mean the checkpoint was written by another query or another
# Spark version: only these make a new checkpoint the answer (exit 4).
INCOMPATIBLE = (
    "STATE_STORE_KEY_SCHEMA_NOT_COMPATIBLE",
    "STATE_STORE_VALUE_SCHEMA_NOT_COMPATIBLE",
    "STATE_STORE_COLUMN_FAMILY_SCHEMA_INCOMPATIBLE",
    "STATE_STORE_INVALID_CONFIG_AFTER_RESTART",
    "STATE_STORE_INVALID_VALUE_SCHEMA_EVOLUTION",
    "STATE_STORE_INVALID_VARIABLE_TYPE_CHANGE",
    "STATE_STORE_KEY_ROW_FORMAT_VALIDATION_FAILURE",
    "STATE_STORE_VALUE_ROW_FORMAT_VALIDATION_FAILURE",
    "STREAMING_STATEFUL_OPERATOR_NOT_MATCH_IN_STATE_METADATA",
    "INVALID_CHANGE_LOG_READER_VERSION",
    "INVALID_CHANGE_LOG_WRITER_VERSION",
    "StateSchemaNotCompatible",
    "UnsupportedLogVersion",
)
# A file of the checkpoint that is missing or cannot be read: the checkpoint is worth
# keeping and repairing, not replacing (exit 1). Spark names a missing offset-log entry
# CONCURRENT_STREAM_LOG_UPDATE; a second job is excluded by the checkpoint's lock.
DAMAGED = (
    "CANNOT_LOAD_STATE_STORE",
    "CANNOT_READ_STREAMING_STATE_FILE",
    "STDS_FAILED_TO_READ_STATE_SCHEMA",
    "MALFORMED_LOG_FILE",
    "CONCURRENT_STREAM_LOG_UPDATE",
    "Failed to read log file",
)
OUT_OF_MEMORY = ("OUT_OF_MEMORY", "OutOfMemoryError")
# Kafka still unreachable when the client's own retries ran out (--kafka-retry-timeout).
KAFKA_GONE = (
    "org.apache.kafka.common.errors.TimeoutException",
    "Cannot fetch record for offset",
)

# What Spark says about a checkpoint file it cannot use: (pattern, what is wrong with it).
_DAMAGE = (
    (re.compile(r"state file of (?:file:)?(?P<path>\S+) does not exist"), "is missing"),
    (re.compile(r"Failed to read log file (?:file:)?(?P<path>\S+?)\.? "), "cannot be read"),
    (
        re.compile(
            r"Concurrent update to the log\. Multiple streaming jobs detected for (?P<batch>\d+)"
        ),
        "has a gap in its offset log",
    ),
)
_CAUSE = re.compile(r"^Caused by: (?:[\w.$]+: )?(?P<detail>.+)$", re.MULTILINE)
_KAFKA_TIMEOUT = re.compile(
    r"(?:org\.apache\.kafka\.common\.errors\.|java\.util\.concurrent\.)TimeoutException: "
    r"(?P<detail>[^\n]+)"
)


def failure_kind(text: str) -> str:
    """``data_loss``, ``incompatible``, ``damaged``, ``kafka`` or ``other``: what a failed
    query's text says went wrong (pure, so it is tested on the texts Spark really writes)."""
    if "failOnDataLoss" in text:
        return "data_loss"
    if any(marker in text for marker in INCOMPATIBLE):
        return "incompatible"
    if any(marker in text for marker in DAMAGED) and not any(m in text for m in OUT_OF_MEMORY):
        return "damaged"
    if any(marker in text for marker in KAFKA_GONE):
        return "kafka"
    return "other"


def first_line(text: str, limit: int = 300) -> str:
    """The first line of ``text`` without Spark's ``[STREAM_FAILED] Query [...]`` prefix."""
    line = (text.strip().splitlines() or [""])[0]
    line = re.sub(r"^\[STREAM_FAILED\] Query \[[^]]*\] terminated with exception: ", "", line)
    return without_sqlstate(line)[:limit]


def without_sqlstate(text: str) -> str:
    """Spark's ``SQLSTATE: XXKST`` suffixes mean nothing to the reader of one line."""
    return re.sub(r"\s*SQLSTATE: \w+", "", text).strip()


def record_failure(options: JobOptions, text: str) -> Path | None:
    """The whole text of a failed query (Spark's and the driver's stack traces), kept in
    the checkpoint; the job prints one line that names this file."""
    path = Path(options.checkpoint_dir) / "last-failure.txt"
    try:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        path.write_text(f"{stamp}\n{text}\n")
    except OSError:
        return None
    return path


def damage_report(text: str, options: JobOptions) -> JobError:
    """The damaged-checkpoint message for Spark's text: which file, and what is wrong."""
    query_dir = Path(options.checkpoint_dir) / QUERY_CHECKPOINT
    for pattern, problem in _DAMAGE:
        match = pattern.search(text)
        if match is None:
            continue
        if "batch" in match.groupdict():
            return damaged(options.checkpoint_dir, query_dir / "offsets", problem)
        return damaged(options.checkpoint_dir, Path(match["path"]), problem)
    causes = [m["detail"].strip() for m in _CAUSE.finditer(text) if "py4j" not in m[0]]
    detail = causes[-1] if causes else first_line(text)
    return damaged(options.checkpoint_dir, query_dir / "state", f"cannot be read ({detail[:200]})")


def explain_failure(exc: Exception, options: JobOptions) -> JobError:
    """One line, and an exit status, for a query that failed; details in a file."""
    text = str(exc)
    details = record_failure(options, text)
    see = f" (Spark's details: {details})" if details else ""
    kind = failure_kind(text)
    if kind == "data_loss":
        return JobError(
            f"the streaming query failed: records that the checkpoint {options.checkpoint_dir} "
            f"has not counted yet are gone from {options.topic!r} (retention or a deletion "
            "removed them first). The job stops rather than skip them silently. To count what "
            f"the topic holds now, use a new --checkpoint-dir.{see}",
            EXIT_FAILED,
        )
    if kind == "incompatible":
        return JobError(
            f"the checkpoint {options.checkpoint_dir} was written by another version of this "
            f"query or of Spark ({first_line(text)}). Use a new --checkpoint-dir (or the "
            f"Spark version that wrote it).{see}",
            EXIT_CHECKPOINT,
        )
    if kind == "damaged":
        return JobError(f"{damage_report(text, options)}{see}", EXIT_FAILED)
    if kind == "kafka":
        cause = _KAFKA_TIMEOUT.search(text)
        detail = without_sqlstate(cause["detail"])[:200] if cause else first_line(text, 200)
        return JobError(
            f"Kafka at {options.bootstrap_servers} stopped answering while the job ran and "
            f"was still unreachable after --kafka-retry-timeout {options.kafka_retry_timeout_s} "
            f"s ({detail}). Nothing is lost: once Kafka is back, rerun the same command to "
            f"resume.{see}",
            EXIT_KAFKA,
        )
    return JobError(f"the streaming query failed: {first_line(text, 500)}{see}", EXIT_FAILED)


def last_committed_batch(options: JobOptions) -> int | None:
    """The newest batch id in the query's commit log: what a rerun resumes after."""
    commits = Path(options.checkpoint_dir) / QUERY_CHECKPOINT / "commits"
    ids = [int(p.name) for p in commits.glob("*") if p.name.isdigit()] if commits.is_dir() else []
    return max(ids, default=None)
