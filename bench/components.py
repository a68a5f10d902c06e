"""``--steps profile``: where a record's CPU goes, component by component.

bench/component_job.py drains one topic with a series of queries, each one part of the
job more than the one before, all in one JVM after a warm-up; Spark's event log gives
each query's task CPU (by its job group), and the difference between two neighbours is
what the part between them costs, per record. The minimal tutorial query runs in the same
JVM as the reference. The sinks run on the driver, outside any task: the driver clocks
their calls instead.
"""

from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

from bench.figures import Figure, Sizes
from bench.spark_runs import connector_jars, event_log_options, task_cpu_by_group
from bench.topics import ensure_topic
from services.kafka import LocalKafka
from services.settings import PROJECT_ROOT
from services.spark_submit import submit_env

COMMAND = "python -m bench.run --steps profile"
VARIANTS = ("minimal", "read", "parse", "classify", "aggregate", "dedupe-memory",
            "dedupe-rocksdb", "dedupe-rocksdb-changelog", "job")  # fmt: skip
# (figure, variant, the variant it is measured against; None: on its own)
COMPONENTS = (
    ("read Kafka (and count the records)", "read", None),
    ("parse (from_json of the event's fields)", "parse", "read"),
    ("classify (every check, a reason for each rejection, the event time)", "classify",
     "parse"),
    ("count per period (the period of each event, the aggregation and its state)",
     "aggregate", "classify"),
    ("drop repeated ids, state in memory (Spark's default store)", "dedupe-memory",
     "aggregate"),
    ("drop repeated ids, state in RocksDB without changelog", "dedupe-rocksdb", "aggregate"),
    ("drop repeated ids, state in RocksDB with changelog", "dedupe-rocksdb-changelog",
     "aggregate"),
)  # fmt: skip


def run_components(broker: LocalKafka, topic: str, rounds: int, work: Path) -> list[dict]:
    """One spark-submit of bench/component_job.py; its results with each query's task CPU."""
    import pyspark

    spark_submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    events = work / "events-components"
    command = [str(spark_submit), "--master", "local[*]", *event_log_options(events).split(),
               "--jars", ",".join(connector_jars()),
               str(PROJECT_ROOT / "bench" / "component_job.py"), broker.bootstrap_servers,
               topic, str(work / "components"), str(rounds), *VARIANTS]  # fmt: skip
    result = subprocess.run(command, env=submit_env(), capture_output=True, text=True,
                            timeout=3600, check=False)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"bench/component_job.py failed:\n{result.stderr[-3000:]}")
    results = json.loads((work / "components" / "components.json").read_text())
    cpu = task_cpu_by_group(events)
    for entry in results:
        entry["task_cpu_s"] = cpu.get(entry["run_id"], 0.0)
        if "reread_run_id" in entry:
            entry["reread_cpu_s"] = cpu.get(entry["reread_run_id"], 0.0)
    return results


def per_record_us(results: list[dict], variant: str, key: str = "task_cpu_s") -> float:
    """Median over the rounds of a variant's CPU per record read, in microseconds."""
    return statistics.median(
        r[key] / r["records"] * 1e6 for r in results if r["variant"] == variant and r["records"]
    )


def bench_profile(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    topic = ensure_topic(broker, "bench-drain", sizes.drain, work)
    results = run_components(broker, topic, sizes.profile_rounds, work)
    records = statistics.median(r["records"] for r in results)
    minimal = per_record_us(results, "minimal")
    runs = f"median of {sizes.profile_rounds} round(s) over {records:,.0f} records"
    reference = "the minimal tutorial query, whole, per record (same JVM)"
    figures = []
    for label, variant, base in COMPONENTS:
        value = per_record_us(results, variant)
        detail = f"task CPU of the {variant!r} query"
        if base is not None:
            value -= per_record_us(results, base)
            detail += f" minus that of {base!r}"
        figures.append(_figure(f"CPU per record: {label}", value, reference, minimal,
                               f"{detail}; {runs}"))  # fmt: skip
    job = [r for r in results if r["variant"] == "job"]
    clocks = {name: statistics.median(r["sinks"].get(name, [0, 0, 0])[0] / max(r["batches"], 1)
                                      for r in job)
              for name in ("csv", "database", "quarantine")}  # fmt: skip
    sink_s = sum(clocks.values())
    figures.append(_figure(
        "CPU per record: sinks on the driver (CSV, database, quarantine bookkeeping)",
        sink_s / records * 1e6, reference, minimal,
        "driver time per batch (one batch here): "
        + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in clocks.items())
        + f"; {runs}",
    ))  # fmt: skip
    figures.append(_figure(
        "CPU per record: quarantine of a batch that rejected anything",
        per_record_us(results, "job", "reread_cpu_s"), reference, minimal,
        "the batch's offset range read and classified again (task CPU); the topic has no "
        f"rejected record, so the re-read is asked for; {runs}",
    ))  # fmt: skip
    figures.append(_figure(
        "CPU per record: the whole job (deduplication in memory, as a drain runs it)",
        per_record_us(results, "job"), reference, minimal, runs,
    ))  # fmt: skip
    memory_state = [s for r in results if r["variant"] == "dedupe-memory" for s in r["state"]]
    if memory_state:
        ids = max(s["rows"] for s in memory_state)
        heap = max(s["memory_bytes"] for s in memory_state)
        if ids:
            figures[-1].detail += (
                f"; the in-memory dedupe state held {ids:,} ids in {heap / 2**20:,.0f} MiB "
                f"({heap / ids:,.0f} B each)"
            )
    return figures


def _figure(name: str, value: float, reference: str, minimal: float, detail: str) -> Figure:
    return Figure(name, value, "µs/record", reference, minimal, "(context)", None, COMMAND,
                  detail, higher_is_better=False)  # fmt: skip
