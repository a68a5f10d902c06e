"""Running ``consumer/submit.sh`` from Python (demo, tests, benchmarks), the way users run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.jars import IVY_HOME
from services.settings import PROJECT_ROOT

SUBMIT_SCRIPT = PROJECT_ROOT / "consumer" / "submit.sh"
# The official images' newer Spark (`make venv-newest`); .venv runs the Bitnami family's.
NEWEST_VENV = PROJECT_ROOT / ".venv-newest"


def installed_pyspark(python: Path) -> str:
    """The pyspark version that ``python`` imports ("" without that interpreter or pyspark)."""
    if not python.exists():
        return ""
    return subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('pyspark'))"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip


def submit_command(*job_args: str) -> list[str]:
    """``consumer/submit.sh JOB_ARGS...``; see :func:`submit_env` for its environment."""
    return [str(SUBMIT_SCRIPT), *job_args]


def submit_env(master: str | None = None, **extra: str) -> dict[str, str]:
    """The environment for submit.sh: this venv's Spark, the project's Ivy cache.

    The venv's ``bin`` goes first on PATH so ``python3`` finds this pyspark; the Ivy
    cache is shared with :mod:`services.jars`, so the Kafka client jars download once.
    """
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("SPARK_IVY_DIR", str(IVY_HOME))
    if master:
        env["CONSUMER_SPARK_MASTER"] = master
    env.update(extra)
    return env


def prepare_submit(env: dict[str, str] | None = None) -> str:
    """``consumer/submit.sh --prepare``: resolve the connector and record the class archive
    now, so that a timed or deadline-bound first start does not pay for either.

    Returns what submit.sh said (its stderr); raises if it failed.
    """
    result = subprocess.run([str(SUBMIT_SCRIPT), "--prepare"], env=env or submit_env(),
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"consumer/submit.sh --prepare failed:\n{result.stderr[-3000:]}")
    return result.stderr
