"""What ``make bench-cluster``'s steps share: the cluster's ports and containers, the sizes,
and running commands and make targets against it."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.settings import PROJECT_ROOT, read_env_file

START = "<!-- cluster-bench: written by python -m bench.cluster; do not edit by hand -->"
END = "<!-- /cluster-bench -->"
PROJECT = "login-pipeline"
NODE_PORTS = ("KAFKA_HOST_PORT", "KAFKA_2_HOST_PORT", "KAFKA_3_HOST_PORT")
SECOND_WORKER = f"{PROJECT}-spark-worker-2"


@dataclass(frozen=True)
class Sizes:
    producer: int  # events per kafka-python run
    producer_confluent: int  # events per --client confluent run
    drain: int  # events on the drained topic
    rounds: int  # alternated runs per side of each ratio; medians


FULL = Sizes(producer=100_000, producer_confluent=300_000, drain=300_000, rounds=3)
SMOKE = Sizes(producer=2_000, producer_confluent=5_000, drain=5_000, rounds=1)


class BenchError(RuntimeError):
    """The bench cannot run or a step failed; the message says what to do."""


def env_port(variable: str) -> int:
    return int(read_env_file()[variable])


def bootstrap() -> str:
    return ",".join(f"127.0.0.1:{env_port(v)}" for v in NODE_PORTS)


def run(command: list[str], timeout: float = 900, check: bool = True) -> str:
    result = subprocess.run(
        command,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise BenchError(
            f"{' '.join(command[:4])} ... failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-3000:]}"
        )
    return result.stdout + result.stderr


def make(*args: str, timeout: float = 900) -> str:
    return run(["make", "--no-print-directory", *args, "TOPOLOGY=cluster"], timeout)


def wait_until(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = condition()
        except Exception:  # not answering yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)  # poll interval, bounded by the deadline


def refuse_existing_data() -> None:
    listing = run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
            "--format",
            "{{.Names}}",
        ]
    ).split()
    volumes = [
        v
        for v in run(["docker", "volume", "ls", "--format", "{{.Name}}"]).split()
        if v.startswith((f"{PROJECT}-cluster_", f"{PROJECT}-apache-cluster_"))
    ]
    if listing or volumes:
        raise BenchError(
            f"a {PROJECT} stack or the cluster topology's volumes exist "
            f"({', '.join(listing + volumes)}); the bench starts its own cluster and removes "
            "it, volumes included. `make down` "
            "(and `make clean TOPOLOGY=cluster` if its data may go) first."
        )
