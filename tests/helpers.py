"""Helpers for tests: running the job as users do, and computing expected counts independently."""

from __future__ import annotations

import csv
import socket
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.kafka import LocalKafka, read_topic  # noqa: F401 - re-exported for tests
from services.spark_submit import submit_command, submit_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def expected_monthly(events: Iterable[dict], zone: str = "UTC") -> dict[str, tuple[int, int, int]]:
    """``month -> (logins, successful, failed)`` computed with the standard library only.

    Independent of the job's code: Python's datetime and zoneinfo, not Spark.
    """
    logins: Counter[str] = Counter()
    successful: Counter[str] = Counter()
    for event in events:
        moment = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        month = moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m")
        logins[month] += 1
        successful[month] += bool(event["success"])
    return {m: (logins[m], successful[m], logins[m] - successful[m]) for m in sorted(logins)}


@dataclass
class JobRun:
    result: subprocess.CompletedProcess[str]
    output_dir: Path

    @property
    def output(self) -> str:
        """Everything the job printed. spark-submit merges the Python driver's stderr into
        its stdout, so the job's error messages arrive on stdout."""
        return self.result.stdout + self.result.stderr

    @property
    def monthly(self) -> dict[str, tuple[int, int, int]]:
        """``month -> (logins, successful, failed)`` from the job's CSV."""
        with (self.output_dir / "monthly_logins.csv").open(newline="") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == ["month", "logins", "successful", "failed"]
            return {
                row["month"]: (int(row["logins"]), int(row["successful"]), int(row["failed"]))
                for row in reader
            }

    @property
    def rejected(self) -> dict[str, int]:
        with (self.output_dir / "rejected_reasons.csv").open(newline="") as handle:
            return {row["reason"]: int(row["records"]) for row in csv.DictReader(handle)}


def run_job(
    broker: LocalKafka,
    topic: str,
    work_dir: Path,
    *extra: str,
    master: str | None = None,
    timeout: float = 300,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> JobRun:
    """Run ``consumer/submit.sh`` exactly as a user would, draining ``topic`` once."""
    output_dir = work_dir / "output"
    command = submit_command(
        "--bootstrap-servers",
        broker.bootstrap_servers,
        "--topic",
        topic,
        "--trigger",
        "available-now",
        "--checkpoint-dir",
        str(work_dir / "checkpoint"),
        "--output-dir",
        str(output_dir),
        *extra,
    )
    result = subprocess.run(
        command,
        env=submit_env(master, **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"job exited {result.returncode}\nstdout:\n{result.stdout[-5000:]}\n"
            f"stderr:\n{result.stderr[-5000:]}"
        )
    return JobRun(result, output_dir)


def produce_raw(bootstrap_servers: str, topic: str, values: Iterable[bytes | None]) -> int:
    """Publish ``values`` with a plain kafka-python producer (not the project's) and wait."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024
    )
    futures = [producer.send(topic, value=v) for v in values]
    producer.flush()
    for future in futures:
        future.get(timeout=30)
    producer.close()
    return len(futures)


COMPOSE_FILES = (
    "docker-compose.kafka.yml",
    "docker-compose.spark.yml",
    "docker-compose.producer.yml",
)


def compose_binary() -> Path:
    """The Compose v2 CLI built by ``make tools`` (Compose's own loader, no engine needed)."""
    from services.settings import CACHE_DIR

    binary = CACHE_DIR / "bin" / "docker-compose"
    if not binary.exists():
        unavailable(f"{binary} is missing: run `make tools` (make test does) to build it")
    return binary


def unavailable(reason: str) -> None:
    """Skip a test whose tool or service is missing; under CI=true that is a failure."""
    import os

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run docker-compose in the project directory with .env as the only configuration."""
    import os

    from services.settings import PROJECT_ROOT, read_env_file

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
    import json

    args = [arg for f in files for arg in ("-f", f)]
    args += [arg for p in profiles for arg in ("--profile", p)]
    result = compose(*args, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def record_reliability(name: str, **row: object) -> None:
    """Keep a reliability test's figures for docs/RELIABILITY.md (scripts/reliability_report.py)."""
    import json

    from services.settings import PROJECT_ROOT

    folder = PROJECT_ROOT / "output" / "reliability"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(row, indent=2) + "\n")


def produce_with_metadata(
    bootstrap_servers: str, topic: str, values: list[bytes | None], **config: object
) -> list[tuple[int, int]]:
    """Publish ``values`` with a plain kafka-python producer; their (partition, offset).

    Records are keyed (a null value needs a key) and spread over partitions by the key.
    """
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024, **config
    )
    futures = [producer.send(topic, key=f"k{i}".encode(), value=v) for i, v in enumerate(values)]
    producer.flush()
    placed = [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]
    producer.close()
    return placed


def wait_for(condition, timeout_s: float, what: str, interval_s: float = 0.5):
    """Poll ``condition()`` until it returns a truthy value; fail with ``what`` at the deadline."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval_s)  # poll interval, bounded by the deadline
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")


class RunningJob:
    """``consumer/submit.sh`` running in the background in its own process group."""

    def __init__(
        self,
        broker: LocalKafka,
        topic: str,
        work_dir: Path,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.output_dir = work_dir / "output"
        log_id = next(_job_logs)
        self.stdout_path = work_dir / f"job-{log_id}.out"
        self.stderr_path = work_dir / f"job-{log_id}.err"
        command = submit_command(
            "--bootstrap-servers",
            broker.bootstrap_servers,
            "--topic",
            topic,
            "--checkpoint-dir",
            str(work_dir / "checkpoint"),
            "--output-dir",
            str(self.output_dir),
            *extra,
        )
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                command,
                env=submit_env(**(env or {})),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill_hard(self) -> None:
        """kill -9 the whole job: bash, the spark-submit JVM and the Python driver."""
        import os
        import signal

        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM to submit.sh, which has the driver stop the query between batches."""
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill_hard()

    def monthly(self) -> dict[str, tuple[int, int, int]] | None:
        try:
            return JobRun(subprocess.CompletedProcess([], 0), self.output_dir).monthly
        except (FileNotFoundError, ValueError):
            return None


_job_logs = iter(range(1, 1_000_000))


def start_producer(bootstrap_servers: str, topic: str, *args: str) -> subprocess.Popen[str]:
    """``python -m producer`` in the background against ``topic``, output captured."""
    import os
    import sys

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "LOGINS_TOPIC": topic}
    return subprocess.Popen(
        [sys.executable, "-m", "producer", "--progress", "none", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def make_help() -> str:
    from services.settings import PROJECT_ROOT

    return subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
