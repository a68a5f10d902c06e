"""A Spark standalone cluster (one Master, one Worker) run as local processes.

It stands in for the Bitnami containers of ``docker-compose.spark.yml`` on machines without
Docker: the same Spark version (pyspark's own ``spark-class``), the same master URL scheme,
so ``consumer/submit.sh`` runs the job on a real cluster exactly as ``make submit`` does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

READY_TIMEOUT_S = 90.0


class LocalSparkError(RuntimeError):
    """The cluster did not come up; the message carries the end of its logs."""


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@dataclass
class LocalSparkCluster:
    """Master on ``master_port`` (UI on ``master_ui_port``) and one Worker, logs in ``home``."""

    home: Path
    master_port: int
    master_ui_port: int
    worker_ui_port: int
    worker_cores: int = 2
    worker_memory: str = "1G"
    host: str = "127.0.0.1"
    _processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.master_port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "SPARK_HOME": str(spark_home()),
            "SPARK_DAEMON_MEMORY": "256m",
            "PYSPARK_PYTHON": os.environ.get("PYSPARK_PYTHON", sys.executable),
        }
        self.home.mkdir(parents=True, exist_ok=True)
        with (self.home / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.home,
                start_new_session=True,
            )
        self._processes.append(process)
        return process

    def status(self) -> dict | None:
        """The master's JSON status page, or None while it is not answering."""
        url = f"http://{self.host}:{self.master_ui_port}/json/"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start Master and Worker; return once the master lists the worker as ALIVE."""
        self._spawn(
            "master", "org.apache.spark.deploy.master.Master",
            "--host", self.host, "--port", str(self.master_port),
            "--webui-port", str(self.master_ui_port),
        )  # fmt: skip
        self._spawn(
            "worker", "org.apache.spark.deploy.worker.Worker",
            "--host", self.host, "--cores", str(self.worker_cores),
            "--memory", self.worker_memory, "--webui-port", str(self.worker_ui_port),
            "--work-dir", str(self.home / "work"), self.master_url,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self._processes:
                if process.poll() is not None:
                    self.stop()
                    raise LocalSparkError(f"a Spark daemon exited early:\n{self.tail_logs()}")
            status = self.status()
            if status and status.get("aliveworkers", 0) >= 1:
                return
            time.sleep(0.3)  # poll interval, bounded by the deadline above
        self.stop()
        raise LocalSparkError(f"no ALIVE worker after {timeout_s:.0f}s:\n{self.tail_logs()}")

    def stop(self) -> None:
        for process in reversed(self._processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self._processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        self._processes.clear()

    def tail_logs(self, lines: int = 20) -> str:
        parts = []
        for log in sorted(self.home.glob("*.log")):
            parts.append(f"--- {log.name}")
            parts += log.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(parts)
