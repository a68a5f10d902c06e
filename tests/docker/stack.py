"""Driving the Docker walkthrough from tests: the real Makefile targets on a real engine.

The compose files keep the Bitnami image names; tests hand them the local stand-ins from
:mod:`tests.docker.build` through the same ``.env`` variables a user would set, and use the
Compose CLI that ``make tools`` builds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.settings import CACHE_DIR, PROJECT_ROOT

PROJECT = "login-pipeline"
COMPOSE_BINARY = CACHE_DIR / "bin" / "docker-compose"
PRODUCER_IMAGE = "login-pipeline/producer:local"


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


def project_leftovers() -> list[str]:
    """Containers and volumes of a ``login-pipeline`` stack already on this engine."""
    label = f"label=com.docker.compose.project={PROJECT}"
    found: list[str] = []
    for listing, name in ((("ps", "-a"), "{{.Names}}"), (("volume", "ls"), "{{.Name}}")):
        found += subprocess.run(
            ["docker", *listing, "--filter", label, "--format", name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    return found


@dataclass
class Stack:
    """``make`` targets of the Docker walkthrough with the test images and our Compose CLI."""

    images: dict[str, str]
    transcripts: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.images, "COMPOSE": str(COMPOSE_BINARY)}

    def run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """In the project folder, stdin not a terminal (as in CI), output captured."""
        return subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def make(
        self, target: str, *args: str, timeout: float = 600, record: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``make TARGET [ARGS=...]`` as a user types it."""
        result = self.run(["make", "--no-print-directory", target, *args], timeout)
        if record:
            self.transcripts[record] = result.stdout + result.stderr
        return result

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        files = [
            a for f in ("kafka", "spark", "producer") for a in ("-f", f"docker-compose.{f}.yml")
        ]
        return self.run([str(COMPOSE_BINARY), *files, *args], timeout)

    def services(self) -> dict[str, dict]:
        """``docker compose ps -a`` as ``{service: {State, Health, ExitCode, ...}}``."""
        result = self.compose("ps", "-a", "--format", "json")
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def container(self, service: str) -> str:
        return f"{PROJECT}-{service}-1"

    def inspect(self, service: str) -> dict:
        result = subprocess.run(
            ["docker", "inspect", self.container(service)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)[0]

    def logs(self, service: str) -> str:
        result = subprocess.run(
            ["docker", "logs", self.container(service)], capture_output=True, text=True, check=False
        )
        return result.stdout + result.stderr

    def read_file(self, service: str, path: str) -> str:
        result = self.compose("exec", "-T", service, "cat", path)
        assert result.returncode == 0, result.stderr
        return result.stdout


_MEMORY_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def parse_memory(text: str) -> float:
    """Bytes in ``docker stats``' ``123.4MiB`` notation."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]+)\s*", text)
    if not match or match[2] not in _MEMORY_UNITS:
        raise ValueError(f"not a docker stats memory figure: {text!r}")
    return float(match[1]) * _MEMORY_UNITS[match[2]]


class MemorySampler:
    """The project's containers' memory, summed, sampled with ``docker stats`` until stopped.

    ``docker stats`` reports usage without the page cache, the figure that must fit in a
    Docker Desktop VM. ``peak`` is the largest sum seen across samples.
    """

    def __init__(self) -> None:
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            result = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                capture_output=True,
                text=True,
                check=False,
            )
            sample = {}
            for line in result.stdout.splitlines():
                name, usage = line.split(" ", 1)
                if name.startswith(f"{PROJECT}-"):
                    sample[name] = parse_memory(usage.split("/")[0])
            if sample:
                self.samples.append(sample)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def peak(self) -> tuple[float, dict[str, float]]:
        """The largest total and the per-container figures of that sample."""
        best = max(self.samples, key=lambda s: sum(s.values()), default={})
        return sum(best.values()), best


def timed(
    action: Callable[[], subprocess.CompletedProcess[str]],
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def last_monthly_table(output: str) -> dict[str, tuple[int, int, int]]:
    """The last table the job printed, as ``month -> (logins, successful, failed)``;
    the ``total`` row is kept under ``"total"``."""
    tables = re.findall(
        r"\|month +\|logins\|successful\|failed\|\n\+[-+]+\+\n((?:\|.*\|\n)+)", output
    )
    assert tables, f"no monthly table in the output:\n{output[-3000:]}"
    rows = {}
    for line in tables[-1].splitlines():
        month, *numbers = (cell.strip() for cell in line.strip("|").split("|"))
        rows[month] = tuple(int(n) for n in numbers)
    return rows


def records_read(output: str) -> int:
    """The records the job's batches read, summed from its per-batch lines."""
    return sum(
        int(n.replace(",", "")) for n in re.findall(r"\] batch \d+: ([\d,]+) records read", output)
    )
