"""The cluster topology (TOPOLOGY=cluster) from a test's side, through what the stack
publishes on 127.0.0.1: each Kafka node's own port, the running job's Spark UI and REST
API, PostgreSQL. Plus a live producer on this machine, the job as `make submit` runs it,
and the topic read back independently as it grows.

Every wait polls with a deadline; none of these helpers sleeps for readiness.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from contract.tables import COUNTS_TABLE, PROGRESS_TABLE
from services.settings import PROJECT_ROOT
from tests.support.docker_stack import Stack, connect, last_monthly_table, published_port

TOPIC = "logins"
# Kafka node id -> its service, and the .env variable of the port it publishes for this
# machine (each node advertises its own).
KAFKA_NODES = {1: "kafka", 2: "kafka-2", 3: "kafka-3"}
NODE_PORTS = {1: "KAFKA_HOST_PORT", 2: "KAFKA_2_HOST_PORT", 3: "KAFKA_3_HOST_PORT"}
WORKERS = ("spark-worker", 2)  # the service and how many replicas the cluster file asks for
POLL_S = 0.5  # interval of every wait below, each bounded by its deadline


class WaitTimeoutError(AssertionError):
    """A wait passed its deadline; the message says what was awaited."""


def wait_until(
    condition: Callable[[], Any],
    timeout_s: float,
    what: str,
    abort: Callable[[], str | None] | None = None,
) -> Any:
    """``condition()``'s first truthy value; :class:`WaitTimeoutError` at the deadline, or
    at once when ``abort()`` says why waiting is pointless. Exceptions from the condition
    count as "not yet" (a node or the database may be down meanwhile)."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while True:
        reason = abort() if abort else None
        if reason:
            raise WaitTimeoutError(f"gave up waiting for {what}: {reason}")
        try:
            value = condition()
        except Exception as exc:
            value, last_error = None, f" (last error: {type(exc).__name__}: {exc})"
        if value:
            return value
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout_s:.0f}s waiting for {what}{last_error}"
            )
        time.sleep(POLL_S)  # poll interval, bounded by the deadline


# -- Kafka, node by node ---------------------------------------------------------------------


def node_port(node: int) -> int:
    return published_port(NODE_PORTS[node])


def bootstrap(nodes: Iterable[int] = KAFKA_NODES) -> str:
    return ",".join(f"127.0.0.1:{node_port(n)}" for n in nodes)


@dataclass(frozen=True)
class Partition:
    leader: int  # -1 while none
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


def describe(nodes: Iterable[int] = KAFKA_NODES, topic: str = TOPIC) -> dict[int, Partition]:
    """The topic's partitions as the first node that answers sees them.

    One node at a time: kafka-python's admin client gives up on a bootstrap list whose
    first address refuses, and during the drills one node may be down on purpose.
    """
    from kafka import KafkaAdminClient

    errors = []
    for node in nodes:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=f"127.0.0.1:{node_port(node)}", request_timeout_ms=5000
            )
        except Exception as exc:
            errors.append(f"node {node}: {exc}")
            continue
        try:
            (found,) = admin.describe_topics([topic])
            return {
                p["partition_index"]: Partition(
                    p["leader_id"], tuple(p["replica_nodes"]), tuple(p["isr_nodes"])
                )
                for p in found["partitions"]
            }
        except Exception as exc:
            errors.append(f"node {node}: {exc}")
        finally:
            admin.close()
    raise ConnectionError("no Kafka node answered: " + "; ".join(errors))


def cluster_view(node: int = 1) -> dict:
    """describe_cluster and the topic's settings that matter here, asked from ``node``."""
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{node_port(node)}")
    try:
        cluster = admin.describe_cluster()
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, TOPIC)], config_filter="all"
        )
        settings = {name: c["value"] for name, c in configs["topic"][TOPIC].items()}
        return {"cluster": cluster, "topic_settings": settings}
    finally:
        admin.close()


def isr_full(nodes: Iterable[int] = KAFKA_NODES) -> bool:
    """Every partition has all its replicas in sync, and a leader."""
    partitions = describe(nodes)
    return bool(partitions) and all(
        p.leader >= 0 and set(p.isr) == set(p.replicas) for p in partitions.values()
    )


def end_offsets(nodes: Iterable[int] = KAFKA_NODES) -> dict[int, int]:
    """Next offset of every partition, asked from the first node that answers."""
    from kafka import KafkaConsumer, TopicPartition

    errors = []
    for node in nodes:
        try:
            consumer = KafkaConsumer(
                bootstrap_servers=f"127.0.0.1:{node_port(node)}",
                request_timeout_ms=10000,
            )
        except Exception as exc:
            errors.append(f"node {node}: {exc}")
            continue
        try:
            partitions = consumer.partitions_for_topic(TOPIC) or set()
            ends = consumer.end_offsets([TopicPartition(TOPIC, p) for p in partitions])
            if len(ends) == len(partitions) and partitions:
                return {tp.partition: offset for tp, offset in ends.items()}
            errors.append(f"node {node}: {len(ends)} of {len(partitions)} partitions")
        except Exception as exc:
            errors.append(f"node {node}: {exc}")
        finally:
            consumer.close()
    raise ConnectionError("no Kafka node gave the end offsets: " + "; ".join(errors))


@dataclass
class TopicTruth:
    """The topic read back with a plain kafka-python consumer as it grows, every record once:
    the independent truth the job's counts are compared with."""

    positions: dict[int, int] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    event_ids: set[str] = field(default_factory=set)

    @property
    def records(self) -> int:
        return sum(self.positions.values())

    def read_up_to(self, ends: dict[int, int], timeout_s: float = 120) -> int:
        """Read every record below ``ends`` not read yet; how many were new."""
        from kafka import KafkaConsumer, TopicPartition

        wanted = {p: end for p, end in ends.items() if end > self.positions.get(p, 0)}
        if not wanted:
            return 0
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap(), enable_auto_commit=False, group_id=None
        )
        new = 0
        try:
            assigned = {p: TopicPartition(TOPIC, p) for p in wanted}
            consumer.assign(list(assigned.values()))
            for p, tp in assigned.items():
                consumer.seek(tp, self.positions.get(p, 0))
            deadline = time.monotonic() + timeout_s
            while any(self.positions.get(p, 0) < end for p, end in wanted.items()):
                if time.monotonic() > deadline:
                    raise WaitTimeoutError(
                        f"read {self.positions} of {wanted} back in {timeout_s}s"
                    )
                for tp, batch in consumer.poll(timeout_ms=500).items():
                    for record in batch:
                        if record.offset < self.positions.get(tp.partition, 0):
                            continue
                        if record.offset >= wanted[tp.partition]:
                            break
                        event = json.loads(record.value)
                        self.events.append(event)
                        self.event_ids.add(event["event_id"])
                        self.positions[tp.partition] = record.offset + 1
                        new += 1
        finally:
            consumer.close()
        return new


# -- the job's progress in PostgreSQL, and its executors --------------------------------------


@dataclass(frozen=True)
class Batch:
    batch_id: int
    written_at: float  # epoch seconds
    ends: dict[int, int]


def batches() -> list[Batch]:
    """The job's progress rows (one per committed batch), oldest first."""
    connection = connect("pipeline", "job")
    try:
        rows = connection.run(
            f"SELECT batch_id, written_at, end_offsets FROM {PROGRESS_TABLE} ORDER BY batch_id"
        )
    finally:
        connection.close()
    result = []
    for batch_id, written_at, offsets in rows:
        ends = {int(p): int(o) for p, o in json.loads(offsets).get(TOPIC, {}).items()}
        result.append(Batch(batch_id, _epoch(written_at), ends))
    return result


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


def counted_total() -> int:
    """Logins in the job's table in PostgreSQL."""
    connection = connect("pipeline", "job")
    try:
        ((total,),) = connection.run(
            f"SELECT COALESCE(SUM(logins), 0) FROM {COUNTS_TABLE} WHERE period_kind = 'month'"
        )
    finally:
        connection.close()
    return int(total)


def covers(batch: Batch, ends: dict[int, int], strictly: bool = False) -> bool:
    """Whether ``batch`` read every partition up to ``ends`` (beyond them, if ``strictly``)."""
    return all(
        batch.ends.get(p, 0) > end if strictly else batch.ends.get(p, 0) >= end
        for p, end in ends.items()
    )


def first_batch(condition: Callable[[Batch], bool]) -> Batch | None:
    return next((b for b in batches() if condition(b)), None)


def longest_gap(rows: list[Batch], start: float, end: float) -> float:
    """The longest time between ``start``, the database batches written in between, and
    ``end``: how long the pipeline went without counting anything."""
    moments = [start, *sorted(b.written_at for b in rows if start < b.written_at < end), end]
    return max(b - a for a, b in itertools.pairwise(moments))


def spark_api(path: str) -> Any:
    """The running job's Spark REST API (the driver's UI port that the stack publishes)."""
    url = f"http://127.0.0.1:{published_port('SPARK_JOB_UI_HOST_PORT')}/api/v1{path}"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def executors() -> list[dict]:
    """Every executor the job has had (not the driver), active or not."""
    (application,) = spark_api("/applications")
    found = spark_api(f"/applications/{application['id']}/allexecutors")
    return [e for e in found if e["id"] != "driver"]


def container_ip(stack: Stack, service: str, replica: int = 1) -> str:
    networks = stack.inspect(service, replica)["NetworkSettings"]
    (network,) = networks["Networks"].values()
    return network["IPAddress"]


def worker_ips(stack: Stack) -> dict[int, str]:
    """Replica number -> the worker container's address on the project network."""
    service, replicas = WORKERS
    return {r: container_ip(stack, service, r) for r in range(1, replicas + 1)}


def active_executor_hosts() -> dict[str, str]:
    """Executor id -> host address, for the executors that are alive."""
    return {e["id"]: e["hostPort"].rsplit(":", 1)[0] for e in executors() if e["isActive"]}


# -- a live producer on this machine, and the job as `make submit` runs it --------------------


@dataclass
class LiveProducer:
    """``python -m producer`` in live mode against all three nodes' published ports, until
    stopped; its delivery summary (``--summary-json``) says what Kafka acknowledged."""

    folder: Path
    name: str
    rate: int
    seed: int
    process: subprocess.Popen | None = None

    @property
    def summary_file(self) -> Path:
        return self.folder / f"producer-{self.name}.json"

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.summary_file.unlink(missing_ok=True)
        log = (self.folder / f"producer-{self.name}.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "producer", "--bootstrap-servers", bootstrap(),
                "--topic", TOPIC, "--rate", str(self.rate), "--seed", str(self.seed),
                "--progress", "log", "--summary-json", str(self.summary_file),
            ],
            cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self, timeout_s: float = 120) -> dict:
        """SIGTERM (it flushes what it sent and reports), then its summary."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout_s)
        if not self.summary_file.exists():
            log = (self.folder / f"producer-{self.name}.log").read_text()
            raise AssertionError(
                f"the producer wrote no summary (exit {self.process.returncode}):\n{log[-3000:]}"
            )
        return json.loads(self.summary_file.read_text())


@dataclass
class RunningJob:
    """``make submit ARGS="--trigger 2s"`` in the background, as a user leaves it running;
    its output goes to ``log``. Stopped as Ctrl-C stops it (SIGINT to its process group)."""

    stack: Stack
    log: Path
    trigger: str = "2s"
    process: subprocess.Popen | None = None
    runs: int = 0
    offset: int = 0  # where in the log the current run's output starts

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "submit", f"ARGS=--trigger {self.trigger}"],
                cwd=PROJECT_ROOT, env=self.stack.env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.runs += 1

    @property
    def command(self) -> str:
        return f'make submit ARGS="--trigger {self.trigger}"'

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exited(self) -> str | None:
        """Why waiting on the job is pointless (it exited: status and last line), or None."""
        if self.running() or self.process is None:
            return None
        lines = self.output().strip().splitlines()
        return f"the job exited with status {self.process.returncode}: {lines[-1] if lines else ''}"

    def output(self) -> str:
        """This run's output so far."""
        with self.log.open(errors="replace") as handle:
            handle.seek(self.offset)
            return handle.read()

    def last_table(self) -> dict[str, tuple[int, int, int]]:
        table = last_monthly_table(self.output())
        table.pop("total")
        return table

    def stop(self, timeout_s: float = 180) -> int | None:
        if not self.running():
            return self.process.returncode if self.process else None
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait(timeout=30)


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"docker {' '.join(args)}: {result.stderr}"
    return result
