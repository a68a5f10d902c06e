"""The local broker's settings without starting it: the product's PLAINTEXT broker, and the
tests' SASL and TLS listeners added through its hooks (tests/support/secure_kafka.py)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.kafka import LocalKafka, LocalKafkaError
from tests.support.secure_kafka import SecureKafka


def test_the_local_broker_has_one_plaintext_listener_and_its_controller(tmp_path):
    props = LocalKafka(home=tmp_path, port=9100, controller_port=9101).properties()
    assert props["listeners"] == "PLAINTEXT://localhost:9100,CONTROLLER://localhost:9101"
    assert props["advertised.listeners"] == "PLAINTEXT://localhost:9100"
    assert props["listener.security.protocol.map"] == ("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT")
    assert not [key for key in props if "sasl" in key or "ssl" in key]


def secure(home: Path, **listeners) -> SecureKafka:
    (home / "server.key").write_text(
        "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
    )
    (home / "server.pem").write_text(
        "-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n"
    )
    return SecureKafka(
        home=home,
        port=9100,
        controller_port=9101,
        scram_users={"pipeline": "pw"},
        plain_users={"reporter": 'a "quoted" \\ one'},
        ssl_certfile=home / "server.pem",
        ssl_keyfile=home / "server.key",
        **listeners,
    )


def test_the_secure_broker_adds_its_listeners_users_and_keystore(tmp_path):
    broker = secure(tmp_path, sasl_port=9102, ssl_port=9103, sasl_ssl_port=9104)
    props = broker.properties()
    assert props["listeners"] == (
        "PLAINTEXT://localhost:9100,SASL_PLAINTEXT://localhost:9102,"
        "SASL_SSL://localhost:9104,SSL://localhost:9103,CONTROLLER://localhost:9101"
    )
    assert props["listener.security.protocol.map"] == (
        "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,"
        "CONTROLLER:PLAINTEXT"
    )
    assert props["advertised.listeners"] == (
        "PLAINTEXT://localhost:9100,SASL_PLAINTEXT://localhost:9102,"
        "SASL_SSL://localhost:9104,SSL://localhost:9103"
    )
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
    # The quote and the backslash escaped for JAAS's double-quoted value.
    plain = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'user_reporter="a \\"quoted\\" \\\\ one";'
    )
    for listener in ("sasl_plaintext", "sasl_ssl"):
        assert props[f"listener.name.{listener}.plain.sasl.jaas.config"] == plain
    keystore = str(tmp_path / "tls" / "keystore.pem")
    for listener in ("ssl", "sasl_ssl"):
        assert props[f"listener.name.{listener}.ssl.keystore.location"] == keystore
    assert "listener.name.sasl_plaintext.ssl.keystore.location" not in props
    assert broker.listener_ports() == [9100, 9102, 9104, 9103, 9101]
    assert broker.storage_format_options() == [
        "--add-scram", "SCRAM-SHA-256=[name=pipeline,password=pw]",
        "--add-scram", "SCRAM-SHA-512=[name=pipeline,password=pw]",
    ]  # fmt: skip
    broker.prepare_home()
    assert (tmp_path / "tls" / "keystore.pem").read_text() == (
        "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n"
        "-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n"
    )
    assert stat.S_IMODE((tmp_path / "tls" / "keystore.pem").stat().st_mode) == 0o600


def test_without_tls_listeners_no_keystore_is_written(tmp_path):
    broker = secure(tmp_path, sasl_port=9102)
    broker.prepare_home()
    assert not (tmp_path / "tls").exists()
    assert not [key for key in broker.properties() if ".ssl." in key]


def test_a_plain_user_name_that_jaas_cannot_hold_is_refused(tmp_path):
    broker = SecureKafka(home=tmp_path, sasl_port=9102, plain_users={"a b": "pw"})
    with pytest.raises(LocalKafkaError, match="PLAIN user name 'a b': use letters"):
        broker.properties()
