"""SASL/SCRAM end to end: producer -> broker -> job with credentials, and a wrong password
refused quickly with a clear message by both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from services.kafka import LocalKafka
from tests.helpers import expected_monthly, free_port, read_topic, record_reliability, run_job

pytestmark = [pytest.mark.integration, pytest.mark.slow]

USER, PASSWORD = "pipeline", "correct horse battery staple"


@pytest.fixture(scope="module")
def scram_broker(tmp_path_factory):
    broker = LocalKafka(
        home=tmp_path_factory.mktemp("scram"),
        port=free_port(),
        controller_port=free_port(),
        sasl_port=free_port(),
        scram_users={USER: PASSWORD},
    )
    broker.start()
    yield broker
    broker.stop()


class SaslAddress:
    def __init__(self, broker: LocalKafka) -> None:
        self.bootstrap_servers = broker.sasl_bootstrap_servers


SASL_FLAGS = [
    "--security-protocol",
    "SASL_PLAINTEXT",
    "--sasl-mechanism",
    "SCRAM-SHA-512",
    "--sasl-username",
    USER,
]


def produce(broker: LocalKafka, password: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAFKA_SASL_PASSWORD": password}
    command = [
        sys.executable,
        "-m",
        "producer",
        "--bootstrap-servers",
        broker.sasl_bootstrap_servers,
        *SASL_FLAGS,
        "--progress",
        "none",
        *args,
    ]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_scram_end_to_end_with_the_password_in_a_file(scram_broker, tmp_path):
    secret = tmp_path / "kafka-password"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    result = produce(
        scram_broker,
        "",
        "--topic",
        "secure",
        "--sasl-password-file",
        str(secret),
        "--start",
        "2024-01-01",
        "--end",
        "2024-03-31",
        "--count",
        "500",
    )
    assert result.returncode == 0, result.stderr
    assert "500 acknowledged, 0 failed" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr

    run = run_job(
        SaslAddress(scram_broker),
        "secure",
        tmp_path,
        *SASL_FLAGS,
        "--sasl-password-file",
        str(secret),
    )
    events = [
        json.loads(r.value) for r in read_topic(scram_broker.bootstrap_servers, "secure", 500)
    ]
    assert run.monthly == expected_monthly(events)
    assert PASSWORD not in run.result.stdout + run.result.stderr


def test_wrong_password_fails_fast_for_the_producer(scram_broker):
    started = time.monotonic()
    result = produce(scram_broker, "wrong", "--count", "5", "--connect-timeout", "60s")
    elapsed = time.monotonic() - started
    assert result.returncode == 3
    assert f"refused to authenticate user '{USER}' with SCRAM-SHA-512" in result.stderr
    assert elapsed < 20  # not the 60 s connect timeout
    record_reliability(
        "wrong_password",
        fault="Wrong SASL/SCRAM password",
        injection="producer and job started with a wrong password against a SCRAM listener",
        times=2,
        events=0,
        lost=0,
        double_counted=0,
        note=f"producer refused in {elapsed:.1f} s (exit 3); job refused with exit 3",
    )


def test_wrong_password_fails_fast_for_the_job(scram_broker, tmp_path):
    started = time.monotonic()
    run = run_job(
        SaslAddress(scram_broker),
        "secure",
        tmp_path,
        *SASL_FLAGS,
        env={"KAFKA_SASL_PASSWORD": "wrong"},
        check=False,
    )
    assert run.result.returncode == 3
    assert f"rejected the credentials of '{USER}' (SCRAM-SHA-512)" in run.output
    assert time.monotonic() - started < 60
