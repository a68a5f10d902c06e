"""The embedded local broker: starts on real Kafka jars, answers, stops, and explains failures."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from services.kafka import LocalKafka, LocalKafkaError, broker_answers, process_command
from services.settings import PROJECT_ROOT
from tests.support.kafka import free_port, produce_raw, read_topic

pytestmark = [pytest.mark.integration]


def test_session_broker_is_kafka_in_kraft_mode_and_round_trips_a_record(kafka_broker, topic):
    assert kafka_broker.properties()["process.roles"] == "broker,controller"
    assert "Kafka Server started" in kafka_broker.log_file.read_text()
    produce_raw(kafka_broker.bootstrap_servers, topic, [b"hello"])
    assert [r.value for r in read_topic(kafka_broker.bootstrap_servers, topic, 1)] == [b"hello"]


def test_start_is_idempotent_and_stop_is_clean(tmp_path):
    broker = LocalKafka(home=tmp_path, port=free_port(), controller_port=free_port())
    broker.start()
    try:
        pid = broker.pid()
        broker.start()  # already running: returns at once, same process
        assert broker.pid() == pid
    finally:
        assert broker.stop() is True
    assert process_command(pid) is None, "the broker process is still there"
    assert not broker.pid_file.exists()
    assert not broker_answers(broker.bootstrap_servers, timeout_s=1)
    # A clean shutdown (SIGTERM ran Kafka's shutdown hook to the end), not a kill.
    log = broker.log_file.read_text()
    assert "[kafka-shutdown-hook]" in log and "Shutdown completed" in log
    assert broker.stop() is False  # stopping a stopped broker says so


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        broker = LocalKafka(home=tmp_path, port=port, controller_port=free_port())
        with pytest.raises(LocalKafkaError, match=f"port {port} .* already in use"):
            broker.start()
    assert not (tmp_path / "broker.pid").exists()


@pytest.mark.slow
def test_cli_up_status_down(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{port}",
        "PIPELINE_LOCAL_DIR": str(tmp_path),
    }

    def cli(action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.kafka", action],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=180,
        )

    try:
        up = cli("up")
        assert up.returncode == 0, up.stderr
        assert up.stdout.startswith("    waiting for Kafka to answer (a first run downloads")
        assert f"is up on localhost:{port}" in up.stdout
        assert broker_answers(f"localhost:{port}")
        assert "already running" in cli("up").stdout
        assert "answering" in cli("status").stdout
    finally:
        down = cli("down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not broker_answers(f"localhost:{port}", timeout_s=1)
    status = cli("status")
    assert status.returncode == 1 and "not running" in status.stdout


def test_missing_java_stops_start_with_advice(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    broker = LocalKafka(home=tmp_path / "k", port=free_port(), controller_port=free_port())
    with pytest.raises(LocalKafkaError, match="JAVA_HOME"):
        broker.start()


def test_a_cluster_id_starting_with_a_dash_is_not_taken_for_an_option(tmp_path, monkeypatch):
    import base64

    import services.kafka

    dashed = base64.urlsafe_b64encode(bytes([0xF8]) + bytes(15)).rstrip(b"=").decode()
    assert dashed.startswith("-")
    monkeypatch.setattr(services.kafka, "_new_cluster_id", lambda: dashed)
    broker = LocalKafka(home=tmp_path, port=free_port(), controller_port=free_port())
    try:
        broker.start()
        assert f"cluster.id={dashed}" in (tmp_path / "data" / "meta.properties").read_text()
    finally:
        broker.stop()
