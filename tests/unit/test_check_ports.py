"""`make up`'s port check (scripts/check_ports.py): a busy port stops it before anything
starts, with one sentence that names the holder and the variable that moves the port."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from scripts import check_ports

PROJECT = "login-pipeline"


@pytest.fixture
def listening() -> Iterator[int]:
    """A port this test process listens on (127.0.0.1, a free one)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def model(service: str, published: str, target: int) -> dict:
    port = {"host_ip": "127.0.0.1", "published": published, "target": target}
    return {"name": PROJECT, "services": {service: {"ports": [port]}}}


@pytest.fixture
def no_containers(monkeypatch):
    """``docker ps`` lists nothing (the check runs without an engine here)."""
    real_run = check_ports.run
    monkeypatch.setattr(
        check_ports, "run", lambda command: "" if command[0] == "docker" else real_run(command)
    )


def test_published_ports_and_ranges_come_from_the_model():
    found = check_ports.published_ports(
        {
            "services": {
                "kafka": {"ports": [{"host_ip": "127.0.0.1", "published": "9092", "target": 9092}]},
                "spark-worker": {"ports": [{"published": "8081-8084", "target": 8081}]},
                "producer": {},
            }
        }
    )
    assert found == [
        check_ports.Published("kafka", "127.0.0.1", (9092,), 9092),
        check_ports.Published("spark-worker", "0.0.0.0", (8081, 8082, 8083, 8084), 8081),
    ]


def test_a_free_port_passes(no_containers):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    assert check_ports.problems(model("dashboard", str(free), 8050), {}) == []


def test_a_busy_port_is_one_sentence_with_its_holder_and_variable(listening, no_containers):
    found = check_ports.problems(
        model("dashboard", str(listening), 8050), {8050: "DASHBOARD_HOST_PORT"}
    )
    assert len(found) == 1
    assert found[0].startswith(f"error: port {listening} (dashboard) is taken by ")
    # This process, where the machine says who listens (ss or lsof); never a wrong name.
    assert f"(pid {os.getpid()})" in found[0] or "this machine does not say which" in found[0]
    assert found[0].endswith("; set DASHBOARD_HOST_PORT in .env to a free port.")


def test_the_local_broker_of_make_demo_is_named_with_how_to_stop_it(
    listening, no_containers, monkeypatch, tmp_path
):
    """The pid file `make local-up` writes says the listener is the local broker."""
    (tmp_path / "kafka").mkdir()
    (tmp_path / "kafka" / "broker.pid").write_text(f"{os.getpid()}\n")
    monkeypatch.setenv("PIPELINE_LOCAL_DIR", str(tmp_path))
    monkeypatch.setattr(check_ports, "listening_process", lambda port: ("java", os.getpid()))
    (sentence,) = check_ports.problems(
        model("kafka", str(listening), 9092), {9092: "KAFKA_HOST_PORT"}
    )
    assert sentence == (
        f"error: port {listening} (kafka) is taken by the local broker of `make demo` or "
        f"`make local-up` (pid {os.getpid()}); stop it with `make local-down`, or set "
        "KAFKA_HOST_PORT in .env to a free port."
    )


def test_another_container_is_named(listening, monkeypatch):
    listing = f"other-db-1\tother\t127.0.0.1:{listening}->5432/tcp\n"
    monkeypatch.setattr(check_ports, "run", lambda command: listing)
    (sentence,) = check_ports.problems(
        model("postgres", str(listening), 5432), {5432: "POSTGRES_HOST_PORT"}
    )
    assert sentence == (
        f"error: port {listening} (postgres) is taken by the Docker container other-db-1; stop "
        "it with `docker stop other-db-1`, or set POSTGRES_HOST_PORT in .env to a free port."
    )


def test_the_stacks_own_containers_may_hold_its_ports(listening, monkeypatch):
    """`make up` on a running stack: Compose replaces those containers itself."""
    listing = f"{PROJECT}-kafka-1\t{PROJECT}\t127.0.0.1:{listening}->9092/tcp\n"
    monkeypatch.setattr(check_ports, "run", lambda command: listing)
    assert check_ports.problems(model("kafka", str(listening), 9092), {}) == []


def test_a_range_needs_one_free_port(no_containers):
    """Docker gives each worker one port of the range: only a full range is a problem."""
    for _ in range(50):  # a port whose next one is free too
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            busy = server.getsockname()[1]
            if busy < 65535 and check_ports.is_free("127.0.0.1", busy + 1):
                server.listen()
                assert len(check_ports.problems(model("w", f"{busy}-{busy}", 8081), {})) == 1
                assert check_ports.problems(model("w", f"{busy}-{busy + 1}", 8081), {}) == []
                return
    pytest.fail("no two free consecutive ports found")


def test_every_line_of_the_check_goes_to_stderr_and_the_status_says_so(
    listening, no_containers, monkeypatch, capsys
):
    import io
    import json

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(model("kafka", str(listening), 9092))))
    assert check_ports.main(["-f", "docker-compose.kafka.yml"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines()[-1] == "make up started nothing."
    assert "set KAFKA_HOST_PORT in .env" in err  # the variable, read from the compose file
