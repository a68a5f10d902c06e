"""Running the producer and the job the way users do, and reading what they wrote."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from contract.tables import PERIODS, REJECTED_CSV, read_counts
from services.kafka import LocalKafka
from services.spark_submit import submit_command, submit_env
from tests.support.kafka import free_port


def read_rejected(path: Path) -> dict[str, int]:
    """``reason -> records`` from the job's rejected-reasons table (only tests read it)."""
    with path.open(newline="") as handle:
        return {row["reason"]: int(row["records"]) for row in csv.DictReader(handle)}


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
        return self.counts("month")

    def counts(self, period: str) -> dict[str, tuple[int, int, int]]:
        """The job's table for ``period``, through the contract's one reader."""
        found, counts = read_counts(self.output_dir / PERIODS[period].csv_name)
        assert found.key == period
        return counts

    @property
    def rejected(self) -> dict[str, int]:
        return read_rejected(self.output_dir / REJECTED_CSV)


def spark_env(env: dict[str, str] | None) -> dict[str, str]:
    """The job's extra environment; Spark's UI on a free port rather than 4040, which a
    user's own Spark (or the Docker stack) may be using."""
    env = dict(env or {})
    env.setdefault("SPARK_SUBMIT_EXTRA", f"--conf spark.ui.port={free_port()}")
    return env


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
        env=submit_env(master, **spark_env(env)),
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
                env=submit_env(**spark_env(env)),
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

    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "LOGINS_TOPIC": topic}
    return subprocess.Popen(
        [sys.executable, "-m", "producer", "--progress", "none", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
