"""`make up` never half-starts: with a port it publishes taken (here by the local broker of
`make local-up`, as after `make demo`), it says who holds the port and starts nothing.

On a real engine, through the real Makefile; the broker runs on a free port that the stack
is told to publish Kafka on (KAFKA_HOST_PORT), in a folder of its own (PIPELINE_LOCAL_DIR).
"""

from __future__ import annotations

import os
import subprocess

import pytest

from services.settings import PROJECT_ROOT
from tests.support.compose import FAMILY_FILES
from tests.support.conditions import unavailable
from tests.support.docker_stack import (
    COMPOSE_BINARY,
    engine_answers,
    movable_ports,
    project_leftovers,
)
from tests.support.kafka import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.docker]


def make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def port_check(family: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What `make up` runs before Compose starts anything (scripts/check_ports.py)."""
    files = [arg for name in FAMILY_FILES[family] for arg in ("-f", name)]
    model = subprocess.run(
        [str(COMPOSE_BINARY), *files, "config", "--format", "json"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return subprocess.run(
        ["python3", "scripts/check_ports.py", *files],
        cwd=PROJECT_ROOT, env=env, input=model, capture_output=True, text=True, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("family", FAMILY_FILES)
def test_make_up_names_the_local_broker_on_its_port_and_starts_nothing(family, tmp_path):
    if not engine_answers():
        unavailable("no Docker engine answers `docker info` (`make test-docker` starts one)")
    if project_leftovers():
        unavailable(f"a login-pipeline stack exists on this engine: {project_leftovers()}")
    port = free_port()
    env = {
        **os.environ,
        **movable_ports(),  # the stack's other ports, where something here holds them
        "PIPELINE_LOCAL_DIR": str(tmp_path),
        "KAFKA_HOST_PORT": str(port),
        "STACK": family,
        "COMPOSE": str(COMPOSE_BINARY),
    }
    started = make("local-up", env)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        pid = int((tmp_path / "kafka" / "broker.pid").read_text())
        up = make("up", env)
    finally:
        stopped = make("local-down", env)
    assert stopped.returncode == 0, stopped.stderr
    # docs/DOCKER.md's order: `make local-down`, then `make up` finds every port free.
    assert port_check(family, env).returncode == 0
    assert up.returncode != 0
    said = up.stderr.splitlines()
    assert said[-3:-1] == [
        f"error: port {port} (kafka) is taken by the local broker of `make demo` or "
        f"`make local-up` (pid {pid}); stop it with `make local-down`, or set KAFKA_HOST_PORT "
        "in .env to a free port.",
        "make up started nothing.",
    ], up.stderr
    assert "up] Error 1" in said[-1]  # make's own line
    assert "Container" not in up.stdout + up.stderr  # Compose never ran
    assert project_leftovers() == []
