"""Running and timing Spark jobs for the benchmarks: the project's job through
consumer/submit.sh, the minimal tutorial job with spark-submit, and what Spark's event log
says about where their task time went."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from consumer.options import QUERY_CHECKPOINT
from services.kafka import LocalKafka
from services.settings import PROJECT_ROOT
from services.spark_submit import submit_command, submit_env


@dataclass
class SparkRun:
    """One spark-submit, timed from outside through the query's checkpoint files."""

    start_s: float  # spark-submit launched -> the first batch planned (offsets/0 written)
    query_s: float  # first batch planned -> last batch committed
    stdout: str


def timed_submit(command: list[str], query_dir: Path, env: dict[str, str]) -> SparkRun:
    """Run ``command`` to its end; both jobs are timed the same way, by their checkpoint."""
    launched = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800,
                            check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed:\n{result.stderr[-3000:]}")
    planned = (query_dir / "offsets" / "0").stat().st_mtime
    commits = [p for p in (query_dir / "commits").iterdir() if p.name.isdigit()]
    committed = max(p.stat().st_mtime for p in commits)
    return SparkRun(planned - launched, committed - planned, result.stdout)


def connector_jars() -> list[str]:
    """The connector's jars that Spark lacks, resolved with Ivy as consumer/submit.sh does."""
    import pyspark

    from services.jars import resolve_classpath
    from services.settings import load_settings

    spark_jars = Path(pyspark.__file__).parent / "jars"
    module = tuple(load_settings().spark_kafka_connector.split(":"))
    return [str(jar) for jar in resolve_classpath([module])
            if not (spark_jars / jar.name).exists()]  # fmt: skip


def job_partitions() -> int:
    """The job's own state partitions (``--shuffle-partitions``' default), which the
    minimal job is given for the comparison at equal settings."""
    from consumer.options import build_parser

    return int(build_parser({}).get_default("shuffle_partitions"))


# Spark's default shuffle partitions, which the tutorial job runs with unless told.
SPARK_DEFAULT_PARTITIONS = 200


def minimal_job(
    broker: LocalKafka,
    topic: str,
    checkpoint: Path,
    partitions: int,
    event_log: Path | None = None,
) -> SparkRun:
    """bench/minimal_job.py, given its jars, on the same topic (the drain's reference), with
    ``partitions`` shuffle partitions (``spark.sql.shuffle.partitions``)."""
    import pyspark

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    logging = event_log_options(event_log).split() if event_log else []
    command = [str(spark_submit), "--master", "local[*]", *logging,
               "--conf", f"spark.sql.shuffle.partitions={partitions}",
               "--jars", ",".join(connector_jars()),
               str(PROJECT_ROOT / "bench" / "minimal_job.py"), broker.bootstrap_servers, topic,
               str(checkpoint)]  # fmt: skip
    return timed_submit(command, checkpoint, submit_env())


def console_total(stdout: str) -> int:
    """The minimal job's count, from the last table its console sink printed.

    Rows look like ``|2026-11| 53442|``; a row with a null month (an event time it could
    not parse) counts too, as the job counted it.
    """
    tables = stdout.split("Batch: ")
    return sum(
        int(cells[2])
        for line in tables[-1].splitlines()
        if len(cells := [c.strip() for c in line.split("|")]) == 4 and cells[2].isdigit()
    )


def our_job(
    broker: LocalKafka,
    topic: str,
    files: Path,
    *job_args: str,
    event_log: Path | None = None,
    env: dict[str, str] | None = None,
) -> SparkRun:
    """consumer/submit.sh with available-now on ``topic``; checkpoint and CSV under ``files``."""
    command = submit_command(
        "--bootstrap-servers", broker.bootstrap_servers, "--topic", topic, "--trigger",
        "available-now", "--checkpoint-dir", f"{files}-ck", "--output-dir", f"{files}-out",
        *job_args,
    )  # fmt: skip
    extra = dict(env or {})
    if event_log:
        extra["SPARK_SUBMIT_EXTRA"] = event_log_options(event_log)
    return timed_submit(command, Path(f"{files}-ck") / QUERY_CHECKPOINT, submit_env(**extra))


def event_log_options(folder: Path) -> str:
    """spark-submit options for an uncompressed event log in ``folder`` (for the profile)."""
    folder.mkdir(parents=True, exist_ok=True)
    return (f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir=file://{folder} "
            "--conf spark.eventLog.compress=false")  # fmt: skip


# The drain's stages in the order Spark runs them (one available-now batch).
OUR_STAGES = ("read Kafka, parse, classify", "drop repeated ids (state)",
              "count per period (state), collect")  # fmt: skip
MINIMAL_STAGES = ("read Kafka, parse", "count per month (state)")


def task_cpu_by_group(folder: Path) -> dict[str, float]:
    """Task CPU seconds per job group in the event logs under ``folder``.

    A streaming query runs every job of its batches in a job group named after its run
    id, so this splits one JVM's task CPU between the queries it ran.
    """
    stage_group: dict[int, str] = {}
    cpu: dict[str, float] = {}
    for log in folder.rglob("events*"):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] == "SparkListenerJobStart":
                group = (event.get("Properties") or {}).get("spark.jobGroup.id") or ""
                for stage in event.get("Stage IDs", []):
                    stage_group[stage] = group
            elif event["Event"] == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                group = stage_group.get(event["Stage ID"], "")
                cpu[group] = cpu.get(group, 0.0) + event["Task Metrics"]["Executor CPU Time"] / 1e9
    return cpu


def stage_profile(folder: Path, labels: Sequence[str]) -> tuple[float, str]:
    """Total task CPU seconds in an event log, and the CPU and task time of each stage.

    Task time beyond CPU time is time the tasks waited: for the disk, for the other core,
    or, with more tasks than cores, for a free core.
    """
    cpu: dict[int, float] = {}
    run: dict[int, float] = {}
    for log in folder.rglob("events*"):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["Event"] != "SparkListenerTaskEnd" or not event.get("Task Metrics"):
                continue
            stage, metrics = event["Stage ID"], event["Task Metrics"]
            cpu[stage] = cpu.get(stage, 0.0) + metrics["Executor CPU Time"] / 1e9
            run[stage] = run.get(stage, 0.0) + metrics["Executor Run Time"] / 1e3
    parts = [f"{labels[i] if i < len(labels) else f'stage {stage}'}: CPU {cpu[stage]:.1f} s, "
             f"task time {run[stage]:.1f} s" for i, stage in enumerate(sorted(cpu))]  # fmt: skip
    return sum(cpu.values()), "; ".join(parts)
