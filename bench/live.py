"""``--steps latency`` and ``--steps sustained``: the job running live, at a 1 s trigger."""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.figures import Figure, Sizes, quantile
from bench.topics import create_topic, has_confluent, read_records
from consumer.database import parse_offset_log
from consumer.options import QUERY_CHECKPOINT
from services.kafka import LocalKafka
from services.spark_submit import submit_command, submit_env

LIVE_TRIGGER = "1s"


@contextlib.contextmanager
def live_job(broker: LocalKafka, topic: str, files: Path, *job_args: str) -> Iterator[Path]:
    """The job on ``topic`` with a 1 s trigger (and ``job_args``), started and committed
    once before yielding its query checkpoint; stopped with SIGTERM (between batches)
    afterwards."""
    create_topic(broker, topic)
    checkpoint = Path(f"{files}-ck")
    log = Path(f"{files}-job.log")
    with log.open("w") as job_log:
        job = subprocess.Popen(
            submit_command("--bootstrap-servers", broker.bootstrap_servers, "--topic", topic,
                           "--trigger", LIVE_TRIGGER, "--checkpoint-dir", str(checkpoint),
                           "--output-dir", f"{files}-out", "--starting-offsets", "earliest",
                           *job_args),
            env=submit_env(), stdout=job_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            # The clock starts once the job runs: wait (bounded) for its first commit.
            deadline = time.monotonic() + 180
            while not any((checkpoint / QUERY_CHECKPOINT / "commits").glob("[0-9]*")):
                if job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the live job did not start:\n{log.read_text()[-3000:]}")
                time.sleep(0.2)  # poll interval, bounded by the deadline
            yield checkpoint / QUERY_CHECKPOINT
        finally:
            job.terminate()  # SIGTERM to submit.sh: the driver stops the query between batches
            job.wait(timeout=120)


def end_offsets(offsets_file: Path) -> dict[int, int]:
    """Per partition, where a batch of the offset log ends (the job's own reader of it)."""
    offsets = parse_offset_log(offsets_file.read_text()).offsets
    return {int(p): o for p, o in next(iter(offsets.values())).items()}


def committed_offsets(query_dir: Path) -> dict[int, int]:
    """End offsets (per partition) of the newest committed batch of the query."""
    batches = [int(p.name) for p in (query_dir / "commits").glob("[0-9]*")]
    if not batches:
        return {}
    return end_offsets(query_dir / "offsets" / str(max(batches)))


def wait_until_counted(broker: LocalKafka, topic: str, query_dir: Path, timeout_s: float) -> None:
    """Until the job has committed every record on the topic (bounded)."""
    ends = topic_end_offsets(broker, topic)
    deadline = time.monotonic() + timeout_s
    while any(committed_offsets(query_dir).get(p, 0) < end for p, end in ends.items()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the live job did not catch up with {topic} in {timeout_s:.0f} s")
        time.sleep(0.2)  # poll interval, bounded by the deadline


def topic_end_offsets(broker: LocalKafka, topic: str) -> dict[int, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def bench_latency(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    """Event creation -> the batch that counts it is committed (its CSV already written)."""
    topic = "bench-latency"
    with live_job(broker, topic, work / "latency") as query_dir:
        subprocess.run(
            [sys.executable, "-m", "producer", "--bootstrap-servers", broker.bootstrap_servers,
             "--topic", topic, "--rate", str(sizes.latency_rate), "--duration",
             f"{sizes.latency_s}s", "--progress", "none", "--seed", "3"],
            check=True, capture_output=True, timeout=sizes.latency_s + 120,
        )  # fmt: skip
        wait_until_counted(broker, topic, query_dir, timeout_s=60)
    latencies = _latencies(broker, topic, query_dir)
    p50, p95 = quantile(latencies, 50), quantile(latencies, 95)
    return [Figure(
        f"End-to-end latency p95 (live, {LIVE_TRIGGER} trigger)", p95, "s",
        "trigger interval", 1.0, "<= 2.5 s", p95 <= 2.5,
        f"producer --rate {sizes.latency_rate} with consumer/submit.sh --trigger {LIVE_TRIGGER}",
        f"p50 {p50:.2f} s over {len(latencies):,} events at {sizes.latency_rate:,} events/s",
        higher_is_better=False,
    )]  # fmt: skip


@dataclass
class Step:
    """One rate held for a while by a live job started for it (see :func:`bench_sustained`)."""

    rate: int
    reached: float  # what the producer achieved
    lag_slope: float  # records/s the lag grew by over the step's last two thirds
    committed_rate: float  # records/s the job committed over the same time

    @property
    def flat(self) -> bool:
        return self.lag_slope <= FLAT_SHARE * self.rate

    @property
    def producer_short(self) -> bool:
        return self.reached < 0.9 * self.rate

    def describe(self) -> str:
        text = (f"{self.rate:,}/s: lag {self.lag_slope:+,.0f}/s, committed "
                f"{self.committed_rate:,.0f}/s{'' if self.flat else ' (growing)'}")  # fmt: skip
        if self.producer_short:
            text += f" (producer reached only {self.reached:,.0f}/s)"
        return text


# A step holds its rate when the lag grows by at most this share of the rate per second
# (a job at capacity C below the rate R adds R - C records to the lag every second).
FLAT_SHARE = 0.05


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 for fewer than two)."""
    if len(points) < 2:
        return 0.0
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def run_step(broker: LocalKafka, rate: int, seconds: int, client: str, folder: Path) -> Step:
    """A new topic and a new live job (its own checkpoint, so its state holds only this
    step's ids), the producer at ``rate`` for ``seconds``; the lag sampled every second."""
    topic = f"bench-sustained-{folder.name}"
    samples: list[tuple[float, int, int]] = []  # (time, records on the topic, committed)
    with live_job(broker, topic, folder) as query_dir:
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "--bootstrap-servers", broker.bootstrap_servers,
             "--topic", topic, "--rate", str(rate), "--duration", f"{seconds}s", "--progress",
             "none", "--client", client, "--summary-json", f"{folder}-producer.json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        started = time.monotonic()
        while producer.poll() is None:
            ends = topic_end_offsets(broker, topic)
            done = committed_offsets(query_dir)
            samples.append((time.monotonic() - started, sum(ends.values()),
                            sum(done.get(p, 0) for p in ends)))  # fmt: skip
            time.sleep(1)  # sampling interval of the lag
    summary = json.loads(Path(f"{folder}-producer.json").read_text())
    # The first third is the producer's and the job's ramp-up; the rest is judged.
    judged = samples[len(samples) // 3 :]
    return Step(
        rate,
        summary["acknowledged"] / summary["seconds"],
        slope([(t, end - done) for t, end, done in judged]),
        slope([(t, done) for t, _, done in judged]),
    )


def spread(rates: list[float]) -> str:
    """How far apart repeated runs' rates are, as a share of their median.

    A loaded machine can leave a short step with nothing committed at all; that is said,
    not divided by.
    """
    middle = statistics.median(rates)
    if middle <= 0:
        return "nothing committed in the median run"
    return f"spread {(max(rates) - min(rates)) / middle:.0%}"


def bench_sustained(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    """The highest rate the live job keeps up with: its throughput when a rate overloads it.

    Rates rise step by step, each with a new job and topic, so every step starts alike
    (no lag, and a state of its own ids only, as the deduplication's state is part of
    the work). A step holds its rate when the lag stays flat (:data:`FLAT_SHARE`). At the
    first rate it cannot hold, the job runs batches back to back and commits what it can:
    that throughput is the rate it sustains. That step is run ``sustain_repeats`` more
    times, and the figure is the median, with the spread of the runs. If the job holds
    every rate, the figure is the highest (a lower bound); a producer that cannot reach a
    rate (within 10 %) ends the search there.
    """
    client = "confluent" if has_confluent() else "kafka-python"
    held, steps = 0, []
    for index, rate in enumerate(sizes.sustained_rates):
        steps.append(run_step(broker, rate, sizes.sustain_s, client, work / f"sustained-{index}"))
        if steps[-1].producer_short or not steps[-1].flat:
            break
        held = rate
    detail = "; ".join(step.describe() for step in steps)
    overloaded = (
        steps[-1] if steps and not steps[-1].flat and not steps[-1].producer_short else None
    )
    value = float(held)
    if overloaded is not None:
        again = [
            run_step(
                broker, overloaded.rate, sizes.sustain_s, client, work / f"sustained-{n}-again"
            )
            for n in range(sizes.sustain_repeats)
        ]
        rates = [s.committed_rate for s in [overloaded, *again]]
        value = statistics.median(rates)
        detail = (f"median of {len(rates)} runs at {overloaded.rate:,}/s, which the job cannot "
                  f"hold: committed {', '.join(f'{r:,.0f}' for r in rates)}/s "
                  f"({spread(rates)}); highest rate held: {held:,}/s. Steps: {detail}")  # fmt: skip
    elif steps and steps[-1].producer_short:
        detail = (f"the producer could not reach {steps[-1].rate:,}/s, so the highest rate "
                  f"held is a lower bound. Steps: {detail}")  # fmt: skip
    else:
        detail = f"every rate held (a lower bound). Steps: {detail}"
    return [Figure(
        f"Highest sustained rate (live, {LIVE_TRIGGER} trigger, each step {sizes.sustain_s} s)",
        value, "events/s", "target", 30_000.0, ">= 30,000 events/s", value >= 30_000,
        f"producer --rate R --client {client} with consumer/submit.sh --trigger {LIVE_TRIGGER}",
        detail,
    )]  # fmt: skip


def _latencies(broker: LocalKafka, topic: str, checkpoint: Path) -> list[float]:
    """Per event: commit time of the batch whose offset range holds it, minus its creation."""
    batches = []
    for commit in sorted((checkpoint / "commits").iterdir(), key=lambda p: int(p.name)
                         if p.name.isdigit() else -1):  # fmt: skip
        if not commit.name.isdigit():
            continue
        batches.append((commit.stat().st_mtime, end_offsets(checkpoint / "offsets" / commit.name)))
    latencies = []
    for record in read_records(broker, topic):
        created = datetime.fromisoformat(
            json.loads(record.value)["timestamp"].replace("Z", "+00:00")
        )
        for committed_at, ends in batches:
            if record.offset < ends.get(record.partition, 0):
                latencies.append(committed_at - created.timestamp())
                break
    return latencies
