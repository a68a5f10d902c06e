"""How the producer and the job name a failed TLS handshake, on the texts the clients
really produce (Python's ssl module through kafka-python's log; Java's JSSE through py4j).
The end-to-end refusals (an unknown CA, an expired certificate) are in
tests/integration/test_security.py."""

from __future__ import annotations

import logging

import pytest


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
    from producer.config import KafkaConnection
    from producer.delivery import _AuthFailureWatch, tls_failed_message, tls_failure_kind

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
    from producer.delivery import _AuthFailureWatch

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
    from consumer.guards import explain_tls_failure
    from consumer.options import parse_options

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
