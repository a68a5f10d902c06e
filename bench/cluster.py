"""``make bench-cluster``: what scaling out buys, measured in one run on the cluster topology.

    python -m bench.cluster              # full sizes (about 15 minutes); writes its section
                                         # of docs/PERFORMANCE.md
    python -m bench.cluster --smoke      # seconds-sized version, to a file of your choice

Starts the cluster topology itself (`make up TOPOLOGY=cluster`, with the images that .env or
the environment names), stops its producer, measures, and removes it (`make clean
TOPOLOGY=cluster`). It refuses to run where a `login-pipeline` stack or the cluster
topology's volumes exist: they may be someone's data. Each ratio's two sides run alternated
in the same run, on the same machine, with the same settings:

- producer throughput to a topic with replication factor 3 (`min.insync.replicas=2`, the
  cluster's) against one with replication factor 1 (`min.insync.replicas=1`), 3 partitions
  each, `acks=all`, from this machine through the nodes' published ports: with the
  project's producer (kafka-python) and with `--client confluent` (librdkafka, fast enough
  for the brokers to be the limit);
- the job's drain (`--trigger available-now`, a new checkpoint each run, no database) with
  both Spark workers against one (the other stopped), on the same replicated topic; the
  time is Spark's own per batch (the job's `batch N: ... s` lines), so session start and
  executor launch are out; the executors each run had are read from its REST API;
- the peak memory of all containers (`docker stats`), and the deduplication state's size
  in the checkpoint per event (the drain's one batch wrote every event id it kept).

On a machine with 2 cores, three brokers and two workers share those 2 cores: the ratios
say what replication and a second worker cost or buy *here*; docs/SCALING.md says what
they become on machines of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.figures import Figure
from consumer.options import QUERY_CHECKPOINT
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


# -- producer: replication factor 3 against 1 ------------------------------------------------


def create_topic(name: str, replicas: int) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap())
    try:
        admin.create_topics(
            [
                NewTopic(
                    name, 3, replicas, topic_configs={"min.insync.replicas": str(min(2, replicas))}
                )
            ],
            wait_for_metadata=True,
        )
    finally:
        admin.close()


def produce(topic: str, count: int, client: str, work: Path) -> dict:
    """The project's producer, backfilling ``count`` events to ``topic``; its summary."""
    summary = work / f"{topic}.json"
    run(
        [
            sys.executable,
            "-m",
            "producer",
            "--bootstrap-servers",
            bootstrap(),
            "--topic",
            topic,
            "--months",
            "24",
            "--count",
            str(count),
            "--seed",
            "7",
            "--client",
            client,
            "--progress",
            "none",
            "--summary-json",
            str(summary),
        ],
        timeout=1800,
    )
    result = json.loads(summary.read_text())
    if result["acknowledged"] != count or result["failed"]:
        raise BenchError(f"{topic}: {result['acknowledged']:,} of {count:,} acknowledged")
    return result


def listed(rates: list[float]) -> str:
    return ", ".join(f"{rate:,.0f}" for rate in rates)


def bench_replication(sizes: Sizes, work: Path) -> list[Figure]:
    figures = []
    for client, count in (
        ("kafka-python", sizes.producer),
        ("confluent", sizes.producer_confluent),
    ):
        rates: dict[int, list[float]] = {1: [], 3: []}
        for round_ in range(sizes.rounds):
            order = (3, 1) if round_ % 2 == 0 else (1, 3)
            for replicas in order:
                topic = f"bench-{client}-rf{replicas}-{round_}"
                create_topic(topic, replicas)
                result = produce(topic, count, client, work)
                rates[replicas].append(result["acknowledged"] / result["seconds"])
        rf3, rf1 = statistics.median(rates[3]), statistics.median(rates[1])
        figures.append(
            Figure(
                f"Producer ({client}), replication factor 3 vs 1",
                rf3,
                "events/s",
                "the same producer to a topic with replication factor 1",
                rf1,
                target="(context)",
                met=None,
                detail=f"median of {sizes.rounds} alternated runs of {count:,} events each; "
                "acks=all; RF 3 with min.insync.replicas=2, RF 1 with 1; 3 partitions; runs: RF 3 "
                f"{listed(rates[3])}, RF 1 {listed(rates[1])}",
                command=f"python -m producer --client {client} --months 24 --count {count} "
                "--bootstrap-servers <the three nodes>",
            )
        )
    return figures


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


# -- the run, and its section of docs/PERFORMANCE.md -------------------------------------------


NOTES = """On this machine the three brokers, the two workers, the driver, PostgreSQL and the
producer share 2 cores, so nothing here can run faster for being spread out: replication
makes each broker write every record three times and the leader wait for a follower's fetch
before acknowledging, and a second worker adds an executor JVM whose tasks compete with the
first's for the same cores (with the shuffle and state-store files on one disk). A ratio
near 1 means the cost is small; a ratio below 1 is the price of replication or of the
second JVM, paid here for fault tolerance, not for speed. On machines (or pods) of their
own, brokers and executors add cores, disks and network: docs/SCALING.md sizes them from
the per-core figures above."""


def render(
    figures: list[Figure],
    memory: tuple[float, dict[str, float]],
    sizes: Sizes,
    smoke: bool,
    family: str,
) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    peak, by_container = memory
    containers = ", ".join(
        f"{name.removeprefix(f'{PROJECT}-')} {size / 2**20:,.0f} MiB"
        for name, size in sorted(by_container.items())
    )
    stand_ins = os.environ.get("KAFKA_IMAGE", "").startswith("login-pipeline-test/")
    images = f"{family} images" + (
        "; here the local stand-ins of tests/images/" if stand_ins else ""
    )
    lines = [
        START,
        "## Scaling out (`make bench-cluster`)",
        "",
        f"Run: {when}{' (smoke sizes: not representative)' if smoke else ''}; the cluster "
        f"topology (three Kafka nodes, two Spark workers, {images}) on {os.cpu_count()} "
        "cores. Reproduce: `make bench-cluster`.",
        "",
        "| Figure | Value | Reference | Reference value | Ratio | Details |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        reference = "" if f.reference_value is None else f"{f.reference_value:,.0f}"
        lines.append(
            f"| {f.name} | {f.value:,.0f} {f.unit} | {f.reference} | {reference} | "
            f"{ratio} | {f.detail} |"
        )
    target = "yes" if peak <= 6e9 else "**no**"
    lines.append(
        f"| Peak memory of all containers during the bench | {peak / 1e9:.2f} GB | target "
        f"<= 6 GB | 6.00 | {peak / 6e9:.2f} | met: {target}; {containers} |"
    )
    lines += [
        "",
        NOTES,
        "",
        f"Sizes: {asdict(sizes)}. Commands: " + "; ".join(f"`{f.command}`" for f in figures) + ".",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cluster",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    from bench.probes import ContainerMemorySampler
    from scripts.docker_report import replace_section

    family = read_env_file()["STACK"]
    try:
        refuse_existing_data()
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    figures: list[Figure] = []
    memory = ContainerMemorySampler()
    try:
        with memory:
            print("==> make up TOPOLOGY=cluster", flush=True)
            make("up")
            run(["docker", "stop", f"{PROJECT}-producer-1"])
            print("==> producer: replication factor 3 vs 1", flush=True)
            figures += bench_replication(sizes, work)
            print("==> drain: 2 Spark workers vs 1", flush=True)
            figures += bench_workers(sizes, work, family)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        print("==> make clean TOPOLOGY=cluster", flush=True)
        make("clean")
    section = render(figures, memory.peak, sizes, args.smoke, family)
    page = args.output.read_text() if args.output.exists() else ""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(replace_section(page, section, START, END))
    results = PROJECT_ROOT / "output" / "bench" / "cluster.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps([{**asdict(f), "ratio": f.ratio} for f in figures], indent=2))
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
