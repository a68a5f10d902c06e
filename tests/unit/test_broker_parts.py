"""The local broker's parts that need no Kafka: its files, its ports, finding its process,
its log's tail, the escaping of its settings file. Starting and stopping it is proven by
tests/integration/test_local_kafka.py on a real broker."""

from __future__ import annotations

import base64
import dataclasses
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from services import kafka
from services.kafka import LocalKafka
from services.settings import LOCAL_DIR, PROJECT_ROOT, load_settings


def test_the_broker_files_live_in_its_home(tmp_path):
    broker = LocalKafka(home=tmp_path, host="127.0.0.1", port=9300, controller_port=9301)
    assert broker.bootstrap_servers == "127.0.0.1:9300"
    assert broker.data_dir == tmp_path / "data"
    assert broker.log_file == tmp_path / "broker.log"
    assert broker.pid_file == tmp_path / "broker.pid"
    assert broker.properties_file == tmp_path / "server.properties"
    assert broker.listener_ports() == [9300, 9301]


def test_extra_settings_are_added_and_a_custom_configuration_replaces_all(tmp_path):
    broker = LocalKafka(home=tmp_path, extra_properties={"num.partitions": "6", "x.y": "z"})
    props = broker.properties()
    assert props["num.partitions"] == "6" and props["x.y"] == "z"
    assert props["auto.create.topics.enable"] == "false"
    assert props["log.dirs"] == str(tmp_path / "data")
    custom = LocalKafka(home=tmp_path, custom_properties={"listeners": "PLAINTEXT://h:1", "a": "b"})
    assert custom.properties() == {
        "listeners": "PLAINTEXT://h:1",
        "a": "b",
        "log.dirs": str(tmp_path / "data"),
    }
    assert custom.listener_ports() == [1]


def test_the_one_node_settings_name_its_roles_quorum_and_single_replicas(tmp_path):
    props = LocalKafka(home=tmp_path, port=9400, controller_port=9401).properties()
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "localhost:9401"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["num.partitions"] == "3"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["broker.heartbeat.interval.ms"] == "1000"
    assert props["broker.session.timeout.ms"] == "3000"


def test_a_value_is_escaped_so_java_properties_reads_it_back():
    assert kafka._properties_escape('a\\"b\nc\rd') == 'a\\\\"b\\nc\\rd'
    assert kafka._properties_escape("plain=value") == "plain=value"


def test_a_cluster_id_is_a_uuid_in_url_safe_base64_without_padding():
    ids = {kafka._new_cluster_id() for _ in range(50)}
    assert len(ids) == 50
    for cluster_id in ids:
        assert len(cluster_id) == 22 and "=" not in cluster_id
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_the_log_tail_is_its_last_lines_or_a_note(tmp_path):
    broker = LocalKafka(home=tmp_path)
    assert broker.tail_log() == "(no log yet)"
    broker.log_file.write_text("".join(f"line {n}\n" for n in range(40)))
    assert broker.tail_log() == "\n".join(f"line {n}" for n in range(15, 40))
    assert broker.tail_log(lines=2) == "line 38\nline 39"
    broker.log_file.write_bytes(b"caf\xe9 \xff\n")  # a log is not always UTF-8
    assert broker.tail_log() == "caf\ufffd \ufffd"


def test_paths_inside_the_project_are_shown_relative(tmp_path):
    assert kafka.shown(PROJECT_ROOT / ".local" / "kafka") == Path(".local/kafka")
    assert kafka.shown(tmp_path) == tmp_path


def test_the_default_broker_is_where_env_sends_clients():
    host, _, port = load_settings().bootstrap_servers.split(",")[0].rpartition(":")
    broker = kafka.default_broker()
    assert (broker.host, broker.port, broker.controller_port) == (host, int(port), int(port) + 1)
    assert broker.home == LOCAL_DIR / "kafka"


@pytest.mark.parametrize(
    ("servers", "host", "port"),
    [
        ("broker-a:19092,broker-b:19094", "broker-a", 19092),
        ("[::1]:29092", "[::1]", 29092),
        (":39092", "localhost", 39092),
    ],
)
def test_the_default_broker_takes_the_first_address(monkeypatch, servers, host, port):
    settings = dataclasses.replace(load_settings(), bootstrap_servers=servers)
    monkeypatch.setattr(kafka, "load_settings", lambda: settings)
    broker = kafka.default_broker()
    assert (broker.host, broker.port, broker.controller_port) == (host, port, port + 1)


# --- ports and processes: real sockets and real processes ------------------------------------


def test_a_port_someone_listens_on_is_not_free():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert kafka.port_is_free("127.0.0.1", port) is False
        assert kafka.port_is_free("localhost", port) is False
    assert kafka.port_is_free("127.0.0.1", port) is True


def test_a_free_port_is_free():
    port = kafka.free_port()
    # The system's pick: an ephemeral port, never a privileged one (root could bind those).
    assert 1024 <= port < 65536 and kafka.port_is_free("127.0.0.1", port)


def test_a_process_command_is_read_back_or_none():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "marker-arg"])
    try:
        assert "marker-arg" in (kafka.process_command(child.pid) or "")
    finally:
        child.kill()
        child.wait()
    assert kafka.process_command(child.pid) is None


def test_the_pid_file_counts_only_when_it_names_this_broker(tmp_path):
    broker = LocalKafka(home=tmp_path)
    assert broker.pid() is None  # no file
    broker.pid_file.write_text("not a number\n")
    assert broker.pid() is None

    def sleeper(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", *args])

    ours = sleeper("kafka.Kafka", str(broker.properties_file))
    other = sleeper("kafka.Kafka", "/elsewhere/server.properties")
    plain = sleeper(str(broker.properties_file))
    try:
        for process, expected in ((ours, ours.pid), (other, None), (plain, None)):
            broker.pid_file.write_text(f"{process.pid}\n")
            assert broker.pid() == expected
    finally:
        for process in (ours, other, plain):
            process.kill()
            process.wait()
    broker.pid_file.write_text(f"{ours.pid}\n")
    assert broker.pid() is None  # gone


@pytest.mark.parametrize("port", [0, 1])
def test_the_hooks_of_the_plain_broker_add_nothing(tmp_path, port):
    broker = LocalKafka(home=tmp_path, port=9500 + port)
    assert broker.client_listeners() == {"PLAINTEXT": 9500 + port}
    assert broker.listener_settings() == {}
    assert broker.storage_format_options() == []
    broker.prepare_home()
    assert list(tmp_path.iterdir()) == []
