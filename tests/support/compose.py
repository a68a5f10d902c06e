"""The Compose v2 CLI that `make tools` builds, and `make help`, as tests run them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from services.settings import CACHE_DIR, PROJECT_ROOT, read_env_file
from tests.support.conditions import unavailable

COMPOSE_FILES = (
    "docker-compose.kafka.yml",
    "docker-compose.spark.yml",
    "docker-compose.producer.yml",
    "docker-compose.dashboard.yml",
)
APACHE_FILE = "docker-compose.apache.yml"
# The files `make up` merges for each image family (STACK), in the Makefile's order: the
# apache override right after the Spark file (a test checks the Makefile agrees).
FAMILY_FILES = {
    "bitnami": COMPOSE_FILES,
    "apache": (*COMPOSE_FILES[:2], APACHE_FILE, *COMPOSE_FILES[2:]),
}
CLUSTER_FILE = "docker-compose.cluster.yml"
CLUSTER_APACHE_FILE = "docker-compose.cluster.apache.yml"
# What `make up TOPOLOGY=cluster` adds after the family's files, in the Makefile's order.
CLUSTER_FILES = {"bitnami": (CLUSTER_FILE,), "apache": (CLUSTER_FILE, CLUSTER_APACHE_FILE)}
TOPOLOGIES = ("single", "cluster")


def stack_files(family: str, topology: str = "single") -> tuple[str, ...]:
    """The files `make up STACK=family TOPOLOGY=topology` merges, in its order."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"TOPOLOGY must be one of {', '.join(TOPOLOGIES)}, not {topology!r}")
    return FAMILY_FILES[family] + (CLUSTER_FILES[family] if topology == "cluster" else ())


def compose_binary() -> Path:
    """The Compose v2 CLI built by ``make tools`` (Compose's own loader, no engine needed)."""

    binary = CACHE_DIR / "bin" / "docker-compose"
    if not binary.exists():
        unavailable(f"{binary} is missing: run `make tools` (make test does) to build it")
    return binary


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run docker-compose in the project directory with .env as the only configuration."""

    from services.settings import PROJECT_ROOT

    clean = {k: v for k, v in os.environ.items() if k not in read_env_file()}
    return subprocess.run(
        [str(compose_binary()), *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def compose_model(*files: str, profiles: tuple[str, ...] = ()) -> dict:
    """The normalized model Compose builds from ``files`` (interpolated, merged)."""

    args = [arg for f in files for arg in ("-f", f)]
    args += [arg for p in profiles for arg in ("--profile", p)]
    result = compose(*args, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def make_help() -> str:

    return subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
