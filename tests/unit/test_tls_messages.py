"""How the producer and the job name each TLS certificate problem, checked in-process on
the texts the clients really produce (kafka-python's log lines, the Java client's exception
chains). Pure: moved from tests/integration/test_security.py, which runs the real broker with
those certificates, so that `make test-unit` and `make mutation` run them."""

from __future__ import annotations

import logging

import pytest

from consumer.guards import explain_tls_failure
from consumer.options import parse_options
from producer.config import KafkaConnection
from producer.delivery import (
    _AuthFailureWatch,
    auth_failed_message,
    tls_failed_message,
    tls_failure_kind,
    unreachable_message,
)


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        ("unable to get local issuer certificate", "untrusted"),
        ("self-signed certificate in certificate chain", "untrusted"),
        ("certificate has expired", "expired"),
        ("certificate is not yet valid", "not_yet_valid"),
        ("Hostname mismatch, certificate is not valid for 'kafka.example'", "hostname"),
        ("IP address mismatch, certificate is not valid for '10.0.0.5'", "hostname"),
        ("unsupported certificate purpose", "other"),
    ],
)
def test_the_producer_names_each_certificate_problem(reason: str, kind: str) -> None:
    assert tls_failure_kind(reason) == kind
    watch = _AuthFailureWatch(sasl=False)
    watch.emit(
        _log_record(
            "<KafkaConnection node_id=bootstrap-0 broker_version=unknown (disconnected)>: "
            "Connection lost: KafkaConnectionError: Handshake failed: [SSL: "
            f"CERTIFICATE_VERIFY_FAILED] certificate verify failed: {reason} (_ssl.c:1006)"
        )
    )
    assert watch.tls_failure == (f"certificate verify failed: {reason}", True)
    connection = KafkaConnection("kafka.example:9093", "SSL", ssl_cafile="/etc/ca.pem")
    message = tls_failed_message(connection, *watch.tls_failure)
    assert "\n" not in message and reason in message


def test_the_producer_reports_a_handshake_that_never_reached_the_certificate() -> None:
    watch = _AuthFailureWatch(sasl=False)
    text = (
        "Connection failed: KafkaConnectionError: Handshake failed: [SSL: "
        "UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)"
    )
    watch.emit(_log_record(text))
    assert watch.tls_failure is None  # one cut connection is not yet a verdict
    watch.emit(_log_record(text))
    assert watch.tls_failure is not None and watch.tls_failure[1] is False


JSSE_CAUSES = {
    "not issued for this address": "java.security.cert.CertificateException: No subject "
    "alternative DNS name matching kafka.example found.",
    "not valid yet": "java.security.cert.CertificateNotYetValidException: NotBefore: Thu Jan "
    "01 00:00:00 UTC 2099",
    "has expired": "java.security.cert.CertificateExpiredException: NotAfter: Thu Jan 02 "
    "00:00:00 UTC 2020",
    "not trusted": "sun.security.provider.certpath.SunCertPathBuilderException: unable to "
    "find valid certification path to requested target",
}


@pytest.mark.parametrize("phrase", sorted(JSSE_CAUSES))
def test_the_job_names_each_certificate_problem(phrase: str) -> None:
    options = parse_options(
        ["--bootstrap-servers", "kafka.example:9093", "--security-protocol", "SSL"], {}
    )
    text = (
        "An error occurred while calling o42.get.\n: java.util.concurrent.ExecutionException: "
        "org.apache.kafka.common.errors.SslAuthenticationException: SSL handshake failed\n"
        "Caused by: javax.net.ssl.SSLHandshakeException: PKIX path validation failed\n"
        f"Caused by: {JSSE_CAUSES[phrase]}\n\tat java.base/sun.security.ssl.Alert"
    )
    message = explain_tls_failure(text, options)
    assert message is not None and phrase in message and "\n" not in message
    sasl = "org.apache.kafka.common.errors.SaslAuthenticationException: Authentication failed"
    assert explain_tls_failure(sasl, options) is None  # a password problem stays one


def _log_record(message: str) -> logging.LogRecord:
    return logging.LogRecord("kafka.net.manager", logging.ERROR, __file__, 0, message, (), None)


# -- the exact sentences: each names the problem and who can fix it -------------------------

WHERE = "Kafka at kafka.example:9093"
FIX_CAFILE = "--ssl-cafile / KAFKA_SSL_CAFILE"


@pytest.mark.parametrize(
    ("cafile", "reason", "expected"),
    [
        (
            "/etc/ca.pem",
            "certificate verify failed: certificate has expired",
            f"{WHERE} presented a TLS certificate that has expired (certificate verify failed: "
            "certificate has expired). The broker's operator must renew it (if the date looks "
            "wrong, check this machine's clock); do not turn certificate verification off.",
        ),
        (
            None,
            "certificate is not yet valid",
            f"{WHERE} presented a TLS certificate that is not valid yet (certificate is not yet "
            "valid). Check this machine's clock, or wait until the certificate's start date.",
        ),
        (
            None,
            "Hostname mismatch",
            f"{WHERE} presented a TLS certificate that was not issued for this address "
            "(Hostname mismatch). Connect with a host name the certificate lists "
            "(--bootstrap-servers), or have the certificate reissued with this name.",
        ),
        (
            "/etc/ca.pem",
            "unable to get local issuer certificate",
            f"{WHERE} presented a TLS certificate that is not trusted: it is not signed by the "
            "CA in /etc/ca.pem (unable to get local issuer certificate). Pass the CA "
            f"certificate (PEM) that signed the broker's certificate with {FIX_CAFILE}.",
        ),
        (
            None,
            "self signed certificate",
            f"{WHERE} presented a TLS certificate that is not trusted: it is not signed by this "
            "machine's CA certificates (self signed certificate). Pass the CA certificate "
            f"(PEM) that signed the broker's certificate with {FIX_CAFILE}.",
        ),
        (
            "/etc/ca.pem",
            "unsupported certificate purpose",
            f"{WHERE} presented a TLS certificate that was not accepted (unsupported "
            "certificate purpose; trusted: the CA in /etc/ca.pem). Check the broker's "
            f"certificate and {FIX_CAFILE}.",
        ),
        (
            None,
            "unsupported certificate purpose",
            f"{WHERE} presented a TLS certificate that was not accepted (unsupported "
            "certificate purpose; trusted: this machine's CA certificates). Check the "
            f"broker's certificate and {FIX_CAFILE}.",
        ),
    ],
)
def test_the_producers_sentence_for_each_verdict(cafile, reason, expected):
    connection = KafkaConnection("kafka.example:9093", "SSL", ssl_cafile=cafile)
    assert tls_failed_message(connection, reason, True) == expected


def test_the_producers_sentence_for_a_handshake_without_a_certificate():
    connection = KafkaConnection("kafka.example:9093", "SSL")
    assert tls_failed_message(connection, "EOF occurred", False) == (
        f"the TLS handshake with {WHERE} failed (EOF occurred). Check that this address is a "
        "TLS listener (for one without TLS use --security-protocol PLAINTEXT or "
        f"SASL_PLAINTEXT) and that {FIX_CAFILE} is the CA that signed its certificate."
    )


def test_the_reason_of_a_verify_failure_is_read_without_its_trailing_dot():
    watch = _AuthFailureWatch(sasl=False)
    watch.emit(
        _log_record(
            "Connection lost: Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate "
            "verify failed: certificate has expired. (_ssl.c:1006)"
        )
    )
    assert watch.tls_failure == ("certificate verify failed: certificate has expired", True)
    assert (watch.failure, watch.handshakes_failed) == (None, 0)


def test_a_failed_handshake_gives_its_reason_without_the_ssl_source_line():
    watch = _AuthFailureWatch(sasl=True)
    line = "Connection failed: Handshake failed: [SSL] wrong version number (_ssl.c:1006)"
    watch.emit(_log_record(line))
    watch.emit(_log_record(line))
    assert watch.tls_failure == ("[SSL] wrong version number", False)
    assert watch.handshakes_failed == 2
    # Without "Connection failed" a handshake line is not counted.
    other = _AuthFailureWatch(sasl=False)
    other.emit(_log_record("Connection lost: Handshake failed: [SSL] wrong version number"))
    other.emit(_log_record("Connection lost: Handshake failed: [SSL] wrong version number"))
    assert (other.tls_failure, other.handshakes_failed) == (None, 0)


@pytest.mark.parametrize(
    "message",
    [
        "<BrokerConnection> Authentication failed for user pipeline",
        "AuthenticationFailedError: SASL authentication failed",
    ],
)
def test_a_refused_password_is_noticed_at_once(message):
    watch = _AuthFailureWatch(sasl=False)
    watch.emit(_log_record(message))
    assert watch.failure == message and watch.tls_failure is None


def test_two_connections_lost_after_the_version_count_as_a_refusal_with_sasl_only():
    lost = "<KafkaConnection broker_version=(2, 8)>: Connection lost: socket disconnected"
    watch = _AuthFailureWatch(sasl=True)
    watch.emit(_log_record(lost))
    assert (watch.failure, watch.lost_during_auth) == (None, 1)
    watch.emit(_log_record(lost))
    assert watch.failure == "the broker closed the connection during SASL authentication"
    plaintext = _AuthFailureWatch(sasl=False)
    plaintext.emit(_log_record(lost))
    plaintext.emit(_log_record(lost))
    assert (plaintext.failure, plaintext.lost_during_auth) == (None, 0)
    before_version = _AuthFailureWatch(sasl=True)
    before_version.emit(_log_record("<KafkaConnection broker_version=unknown>: Connection lost"))
    before_version.emit(_log_record("<KafkaConnection broker_version=unknown>: Connection lost"))
    assert before_version.lost_during_auth == 0
    quiet = _AuthFailureWatch(sasl=True)
    assert quiet.level == logging.WARNING


def test_the_unreachable_and_refused_sentences():
    connection = KafkaConnection(
        "k1:9092,k2:9092",
        "SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="pipeline",
        connect_timeout_s=2.5,
    )
    assert unreachable_message(connection, "NoBrokersAvailable") == (
        "Kafka at k1:9092,k2:9092 did not answer within 2.5s (NoBrokersAvailable). Start a "
        "broker (`make local-up`, or `make up` with Docker) or point --bootstrap-servers / "
        "KAFKA_BOOTSTRAP_SERVERS at one."
    )
    assert auth_failed_message(connection, "bad password") == (
        "Kafka at k1:9092,k2:9092 refused to authenticate user 'pipeline' with SCRAM-SHA-512 "
        "(bad password). Check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (or "
        "KAFKA_SASL_PASSWORD_FILE)."
    )


def job_options(*cafile: str):
    flags = ["--bootstrap-servers", "kafka.example:9093", "--security-protocol", "SSL"]
    return parse_options([*flags, *(["--ssl-cafile", *cafile] if cafile else [])], {})


def chain(cause: str) -> str:
    return (
        "org.apache.kafka.common.errors.SslAuthenticationException: SSL handshake failed\n"
        f"Caused by: {cause}\n\tat java.base/sun.security.ssl.Alert"
    )


@pytest.mark.parametrize(
    ("cafile", "cause", "expected"),
    [
        (
            (),
            "java.security.cert.CertificateExpiredException: NotAfter: Thu Jan 02 00:00:00 UTC "
            "2020",
            f"{WHERE} presented a TLS certificate that has expired (valid until Thu Jan 02 "
            "00:00:00 UTC 2020). The broker's operator must renew it (if the date looks wrong, "
            "check this machine's clock); do not turn certificate verification off.",
        ),
        (
            (),
            "java.security.cert.CertificateNotYetValidException: NotBefore: Thu Jan 01 2099",
            f"{WHERE} presented a TLS certificate that is not valid yet (valid from Thu Jan 01 "
            "2099). Check this machine's clock, or wait until the certificate's start date.",
        ),
        (
            (),
            "java.security.cert.CertificateException: No name matching kafka.example found",
            f"{WHERE} presented a TLS certificate that was not issued for this address (No "
            "name matching kafka.example found). Connect with a host name the certificate "
            "lists (--bootstrap-servers), or have the certificate reissued with this name.",
        ),
        (
            ("/etc/ca.pem",),
            "sun.security.validator.ValidatorException: PKIX path building failed",
            f"{WHERE} presented a TLS certificate that is not trusted: it is not signed by the "
            "CA in /etc/ca.pem (unable to find a valid certification path). Pass the CA "
            f"certificate (PEM) that signed the broker's certificate with {FIX_CAFILE}.",
        ),
        (
            (),
            "SunCertPathBuilderException: unable to find valid certification path to target",
            f"{WHERE} presented a TLS certificate that is not trusted: it is not signed by the "
            "JVM's default CA certificates (unable to find a valid certification path). Pass "
            f"the CA certificate (PEM) that signed the broker's certificate with {FIX_CAFILE}.",
        ),
        (
            (),
            "javax.net.ssl.SSLHandshakeException: Remote host terminated the handshake  ",
            f"the TLS handshake with {WHERE} failed (Remote host terminated the handshake). "
            "Check that this address is a TLS listener (for one without TLS use "
            "--security-protocol PLAINTEXT or SASL_PLAINTEXT) and that "
            f"{FIX_CAFILE} is the CA that signed its certificate.",
        ),
    ],
)
def test_the_jobs_sentence_for_each_certificate_problem(cafile, cause, expected):
    assert explain_tls_failure(chain(cause), job_options(*cafile)) == expected


def test_a_handshake_without_a_named_cause_and_a_long_cause_are_one_short_line():
    options = job_options()
    tail = (
        "). Check that this address is a TLS listener (for one without TLS use "
        "--security-protocol PLAINTEXT or SASL_PLAINTEXT) and that "
        f"{FIX_CAFILE} is the CA that signed its certificate."
    )
    bare = "org.apache.kafka.common.errors.SslAuthenticationException: SSL handshake failed"
    assert explain_tls_failure(bare, options) == (
        f"the TLS handshake with {WHERE} failed (SSL handshake failed" + tail
    )
    long = "javax.net.ssl.SSLHandshakeException: " + "x" * 400
    assert explain_tls_failure(long, options) == (
        f"the TLS handshake with {WHERE} failed ({'x' * 300}" + tail
    )
