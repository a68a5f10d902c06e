"""``make bench-cluster``, drain step: the job with two Spark workers against one."""

from __future__ import annotations

import json
import re
import statistics
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.cluster_replication import create_topic, produce
from bench.cluster_stack import (
    PROJECT,
    SECOND_WORKER,
    BenchError,
    Sizes,
    env_port,
    make,
    run,
    wait_until,
)
from bench.figures import Figure
from consumer.options import QUERY_CHECKPOINT

# -- the job's drain: two workers against one ---------------------------------------------------


def alive_workers() -> int:
    url = f"http://127.0.0.1:{env_port('SPARK_MASTER_UI_HOST_PORT')}/json/"
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(json.load(response)["aliveworkers"])


class ExecutorWatch:
    """The distinct executor hosts the running job had, from its REST API, while it runs."""

    def __init__(self) -> None:
        self.hosts: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        base = f"http://127.0.0.1:{env_port('SPARK_JOB_UI_HOST_PORT')}/api/v1/applications"
        while not self._stop.wait(1.0):
            try:
                with urllib.request.urlopen(base, timeout=5) as response:
                    (app,) = json.load(response)
                with urllib.request.urlopen(f"{base}/{app['id']}/allexecutors", timeout=5) as r:
                    found = json.load(r)
            except Exception:  # not up yet, or already gone
                continue
            self.hosts |= {e["hostPort"].rsplit(":", 1)[0] for e in found if e["id"] != "driver"}

    def __enter__(self) -> ExecutorWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class Drain:
    workers: int
    seconds: float  # Spark's batch durations, summed
    counted: int
    executor_hosts: int
    checkpoint: str


def drain(topic: str, label: str, workers: int) -> Drain:
    checkpoint = f"/data/bench/{label}-ck"
    with ExecutorWatch() as watch:
        output = make(
            "submit",
            f"ARGS=--trigger available-now --topic {topic} --checkpoint-dir {checkpoint} "
            f"--output-dir /data/bench/{label}-out --db-url off",
            timeout=1800,
        )
    seconds = sum(
        float(s) for s in re.findall(r"\] batch \d+: [\d,]+ records read, .*?([\d.]+) s \(", output)
    )
    totals = re.findall(r"\|total +\| *(\d+)\|", output)
    if not seconds or not totals:
        raise BenchError(f"the drain printed no batch line or table:\n{output[-3000:]}")
    return Drain(workers, seconds, int(totals[-1]), len(watch.hosts), checkpoint)


def set_workers(count: int) -> None:
    run(["docker", "start" if count == 2 else "stop", SECOND_WORKER])
    wait_until(lambda: alive_workers() == count, 180, f"{count} alive Spark worker(s)")


def state_bytes(checkpoint: str) -> int:
    """The query's state in the checkpoint (both stateful operators), in bytes."""
    out = run(
        [
            "docker",
            "exec",
            f"{PROJECT}-spark-master-1",
            "du",
            "-sb",
            f"{checkpoint}/{QUERY_CHECKPOINT}/state",
        ]
    )
    return int(out.split()[0])


# Where each image family keeps Kafka's log, and each node's container.
KAFKA_DATA = {"bitnami": "/bitnami/kafka/data", "apache": "/var/lib/kafka/data"}
KAFKA_CONTAINERS = (f"{PROJECT}-kafka-1", f"{PROJECT}-kafka-2-1", f"{PROJECT}-kafka-3-1")


def log_bytes(topic: str, family: str) -> int:
    """The topic's log segments on every node, summed (all replicas). Only the ``.log``
    files: Kafka preallocates each segment's index files (10 MB apiece by default)."""
    total = 0
    for container in KAFKA_CONTAINERS:
        script = f"cat {KAFKA_DATA[family]}/{topic}-*/*.log | wc -c"
        total += int(run(["docker", "exec", container, "sh", "-c", script]).split()[0])
    return total


def bench_workers(sizes: Sizes, work: Path, family: str) -> list[Figure]:
    topic = "bench-drain"
    create_topic(topic, 3)
    produce(topic, sizes.drain, "confluent", work)
    on_disk = log_bytes(topic, family) / 3 / sizes.drain
    runs: dict[int, list[Drain]] = {1: [], 2: []}
    try:
        for round_ in range(sizes.rounds):
            for workers in (2, 1) if round_ % 2 == 0 else (1, 2):
                set_workers(workers)
                result = drain(topic, f"w{workers}-{round_}", workers)
                if result.counted != sizes.drain:
                    raise BenchError(
                        f"{workers} worker(s) counted {result.counted:,} of {sizes.drain:,}"
                    )
                runs[workers].append(result)
    finally:
        set_workers(2)
    two, one = (statistics.median(r.seconds for r in runs[w]) for w in (2, 1))
    hosts = {w: sorted({r.executor_hosts for r in runs[w]}) for w in runs}
    per_event = state_bytes(runs[2][0].checkpoint) / sizes.drain
    command = (
        f'make submit TOPOLOGY=cluster ARGS="--trigger available-now --topic {topic} '
        '--checkpoint-dir <new> --db-url off"'
    )
    return [
        Figure(
            "Spark job drain, 2 workers vs 1",
            sizes.drain / two,
            "events/s",
            "the same job with one worker (the second stopped)",
            sizes.drain / one,
            target="(context)",
            met=None,
            detail=f"{sizes.drain:,} events, replication factor 3; median of {sizes.rounds} "
            f"alternated runs: {two:.1f} s against {one:.1f} s of Spark batch time; executor "
            f"hosts per run: {hosts[2]} against {hosts[1]}; counts checked in every run",
            command=command,
        ),
        Figure(
            "Kafka's log on disk, per event and replica",
            on_disk,
            "bytes",
            "(context)",
            None,
            target="(context)",
            met=None,
            detail=f"{sizes.drain:,} events of about 424 bytes of JSON each, produced with lz4 "
            "batches (the producer's default); the topic's log segments on the three nodes, "
            "divided by 3 replicas",
            command="cat <log.dirs>/bench-drain-*/*.log | wc -c on each node",
        ),
        Figure(
            "Deduplication state in the checkpoint, per event",
            per_event,
            "bytes",
            "(context)",
            None,
            target="(context)",
            met=None,
            detail=f"both stateful operators' files after one batch of {sizes.drain:,} distinct "
            "event ids (RocksDB, changelog checkpointing, lz4)",
            command=f"du -sb <checkpoint>/{QUERY_CHECKPOINT}/state",
        ),
    ]
