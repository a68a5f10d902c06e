"""Checks that turn a wrong setup into one clear error before (or instead of) counting:
Kafka reachable and the topic there, the checkpoint written for this query."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from consumer.errors import EXIT_CHECKPOINT, EXIT_FAILED, EXIT_KAFKA, JobError
from consumer.options import (
    APP_NAME,
    QUERY_CHECKPOINT,
    JobOptions,
)


def check_kafka(spark: SparkSession, options: JobOptions) -> int:
    """Fail fast, and clearly, if Kafka is unreachable, refuses us, or lacks the topic.

    Spark's Kafka source would otherwise retry for minutes or, for a missing topic, run
    with empty batches and print an empty table. Uses the Kafka client that the connector
    puts on the driver's classpath. Returns the topic's partition count.
    """
    jvm = spark.sparkContext._jvm  # py4j gateway: how PySpark code reaches JVM classes
    assert jvm is not None
    props = jvm.java.util.Properties()
    for key, value in options.kafka_properties().items():
        props.setProperty(key, value)
    timeout_ms = str(options.connect_timeout_s * 1000)
    props.setProperty("request.timeout.ms", timeout_ms)
    props.setProperty("default.api.timeout.ms", timeout_ms)
    seconds = jvm.java.util.concurrent.TimeUnit.SECONDS
    admin = None
    try:
        admin = jvm.org.apache.kafka.clients.admin.Admin.create(props)
        names = admin.listTopics().names().get(options.connect_timeout_s + 5, seconds)
        if not names.contains(options.topic):
            available = sorted(str(n) for n in names.toArray() if not str(n).startswith("__"))
            raise JobError(
                f"topic {options.topic!r} does not exist on {options.bootstrap_servers} "
                f"(topics there: {', '.join(available) or 'none'}). Create it by running the "
                "producer (it creates the topic), or pass the right --topic / LOGINS_TOPIC.",
                EXIT_KAFKA,
            )
        description = admin.describeTopics(jvm.java.util.List.of(options.topic))
        topic = description.allTopicNames().get(options.connect_timeout_s + 5, seconds)
        return int(topic.get(options.topic).partitions().size())
    except Exception as exc:  # py4j wraps Java exceptions; classify by their text
        if isinstance(exc, JobError):
            raise
        text = str(exc)
        if "No resolvable bootstrap urls" in text:
            raise JobError(
                f"no address of Kafka at {options.bootstrap_servers} resolves (DNS). Is the "
                "broker running (`make local-up`, or `make up` with Docker), and is "
                "--bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS right?",
                EXIT_KAFKA,
            ) from None
        tls = explain_tls_failure(text, options)
        if tls is not None:
            raise JobError(tls, EXIT_KAFKA) from None
        if "Authentication" in text or "SaslAuthentication" in text:
            raise JobError(
                f"Kafka at {options.bootstrap_servers} rejected the credentials of "
                f"{options.security.username!r} ({options.security.mechanism}). Check "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD.",
                EXIT_KAFKA,
            ) from None
        if "Timeout" in text or "timed out" in text:
            raise JobError(
                f"Kafka at {options.bootstrap_servers} did not answer within "
                f"{options.connect_timeout_s}s. Is the broker running (`make local-up` or "
                "`make up`), and is --bootstrap-servers / KAFKA_BOOTSTRAP_SERVERS right?",
                EXIT_KAFKA,
            ) from None
        raise
    finally:
        if admin is not None:
            admin.close()


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
    if existing.exists() and any(existing.iterdir()):
        raise JobError(
            f"{options.checkpoint_dir} is not empty and was not written by this job. "
            "Use a new --checkpoint-dir.",
            EXIT_CHECKPOINT,
        )


def record_checkpoint_identity(options: JobOptions) -> None:
    """Written once Kafka has answered, so a run that never started claims no checkpoint."""
    marker = checkpoint_marker(options)
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps(checkpoint_identity(options), indent=2) + "\n")


def explain_failure(exc: Exception, options: JobOptions) -> JobError:
    text = str(exc)
    if "state schema" in text.lower() or "STATE_STORE" in text or "incompatible" in text.lower():
        return JobError(
            f"the checkpoint {options.checkpoint_dir} was written by an incompatible version "
            f"of this query ({text.splitlines()[0][:300]}). Use a new --checkpoint-dir.",
            EXIT_CHECKPOINT,
        )
    if "failOnDataLoss" in text:
        return JobError(
            f"the streaming query failed: records that the checkpoint {options.checkpoint_dir} "
            f"has not counted yet are gone from {options.topic!r} (the topic was deleted and "
            "recreated, or retention removed them first). The job stops rather than skip them "
            "silently. To count what the topic holds now, use a new --checkpoint-dir.",
            EXIT_FAILED,
        )
    return JobError(f"the streaming query failed: {text[:2000]}", EXIT_FAILED)


def last_committed_batch(options: JobOptions) -> int | None:
    """The newest batch id in the query's commit log: what a rerun resumes after."""
    commits = Path(options.checkpoint_dir) / QUERY_CHECKPOINT / "commits"
    ids = [int(p.name) for p in commits.glob("*") if p.name.isdigit()] if commits.is_dir() else []
    return max(ids, default=None)
