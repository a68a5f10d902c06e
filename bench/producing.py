"""Steps 1 and 2 of ``make bench``: generating events (Faker) and producing them to Kafka,
each next to its reference (Faker called for every field; a bare kafka-python loop and
Kafka's own kafka-producer-perf-test with the same payloads and settings)."""

from __future__ import annotations

import json
import re
import statistics
import time
from pathlib import Path

from bench.figures import Figure, Sizes
from bench.probes import kafka_tool
from bench.topics import backfill_range, create_topic, run_producer
from producer.events import LoginEventGenerator, LoginRecord
from services.kafka import LocalKafka

# -- 1. generation -----------------------------------------------------------------------------


def bench_generation(sizes: Sizes) -> list[Figure]:
    """The project's generator against calling Faker for every field (the naive way)."""
    start, end = backfill_range()
    generator = LoginEventGenerator(seed=1)
    started = time.perf_counter()
    produced = sum(1 for _ in generator.backfill(start, end, sizes.generation))
    rate = produced / (time.perf_counter() - started)

    from faker import Faker

    fake = Faker()
    Faker.seed(1)
    sample = max(sizes.generation // 50, 2000)
    started = time.perf_counter()
    for _ in range(sample):
        json.dumps({
            "event_id": fake.uuid4(), "user_id": fake.user_name(),
            "timestamp": fake.iso8601(), "browser_info": fake.chrome(),
            "user_agent": fake.user_agent(), "country": fake.country_code(),
            "ip_address": fake.ipv4_public(), "success": fake.boolean(97),
        }).encode()  # fmt: skip
    naive = sample / (time.perf_counter() - started)
    return [Figure(
        "Event generation (no Kafka)", rate, "events/s",
        "Faker called for every field", naive, ">= 150,000 events/s", rate >= 150_000,
        "LoginEventGenerator(seed=1).backfill(...), each event JSON-encoded",
        f"{sizes.generation:,} events, JSON-encoded",
    )]  # fmt: skip


# -- 2. producer -------------------------------------------------------------------------------


def bare_kafka_python(broker: LocalKafka, topic: str, records: list[LoginRecord]) -> float:
    """The reference: pre-built records through kafka-python with the producer's settings."""
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks="all", enable_idempotence=True,
        compression_type="lz4", linger_ms=20, batch_size=256 * 1024,
    )  # fmt: skip
    acknowledged = 0

    def on_ack(_metadata: object) -> None:
        nonlocal acknowledged
        acknowledged += 1

    started = time.perf_counter()
    for record in records:
        producer.send(topic, key=record.key, value=record.value).add_callback(on_ack)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    assert acknowledged == len(records)
    return len(records) / elapsed


def perf_test_producer(broker: LocalKafka, topic: str, records: list[LoginRecord],
                       work: Path) -> tuple[float, str]:  # fmt: skip
    """kafka-producer-perf-test with the same JSON payloads and the same settings."""
    payloads = work / "payloads.txt"
    payloads.write_bytes(b"\n".join(r.value for r in records[:100_000]))
    args = [
        "--topic", topic, "--num-records", str(len(records)), "--throughput", "-1",
        "--payload-file", str(payloads),
        "--producer-props", f"bootstrap.servers={broker.bootstrap_servers}", "acks=all",
        "enable.idempotence=true", "compression.type=lz4", "linger.ms=20", "batch.size=262144",
    ]  # fmt: skip
    output = kafka_tool("org.apache.kafka.tools.ProducerPerformance", *args)
    match = re.findall(r"([\d.]+) records/sec", output)
    command = "kafka-producer-perf-test " + " ".join(args).replace(str(payloads), "<payloads>")
    return float(match[-1]), command


def bench_producer(broker: LocalKafka, sizes: Sizes, work: Path) -> list[Figure]:
    start, end = backfill_range()
    records = list(LoginEventGenerator(seed=7).backfill(start, end, sizes.producer))
    mean_size = statistics.fmean(len(r.value) for r in records)
    # One run of each varies by a third from run to run on 2 cores: alternate, take medians.
    bare_rates: list[float] = []
    runs: list[dict] = []
    for round_ in range(sizes.rounds):
        create_topic(broker, f"bench-bare-{round_}")
        bare_rates.append(bare_kafka_python(broker, f"bench-bare-{round_}", records))
        runs.append(run_producer(
            broker, f"bench-producer-{round_}", sizes.producer, "kafka-python", work
        ))  # fmt: skip
    bare = statistics.median(bare_rates)
    rate = statistics.median(r["acknowledged"] / r["seconds"] for r in runs)
    mb = statistics.median(r["bytes_acknowledged"] / r["seconds"] for r in runs) / 1e6
    create_topic(broker, "bench-perf")
    perf, perf_command = perf_test_producer(broker, "bench-perf", records, work)
    command = (f"python -m producer --months 24 --count {sizes.producer} --seed 7 "
               "--progress none")  # fmt: skip
    figures = [
        Figure("Producer (kafka-python), generation included", rate, "events/s",
               "bare kafka-python loop, pre-built records", bare,
               ">= 0.9 x reference and >= 35,000 events/s",
               rate >= 0.9 * bare and rate >= 35_000, command,
               f"median of {sizes.rounds} alternated runs; {mb:.1f} MB/s acknowledged, "
               f"{mean_size:.0f} B per event, acks=all, idempotent, lz4, linger 20 ms, "
               "batch 256 KiB"),
        Figure("Producer (kafka-python) vs Kafka's tool", rate, "events/s",
               "kafka-producer-perf-test, same payloads and settings", perf,
               "(context)", None, perf_command),
    ]  # fmt: skip
    try:
        import confluent_kafka  # noqa: F401 - optional extra
    except ImportError:
        return figures
    fast = run_producer(broker, "bench-confluent", sizes.producer, "confluent", work)
    fast_rate = fast["acknowledged"] / fast["seconds"]
    figures.append(Figure(
        "Producer (--client confluent), generation included", fast_rate, "events/s",
        "kafka-producer-perf-test, same payloads and settings", perf, ">= 0.5 x reference",
        fast_rate >= 0.5 * perf, command + " --client confluent",
        f"{fast['bytes_acknowledged'] / fast['seconds'] / 1e6:.1f} MB/s acknowledged",
    ))  # fmt: skip
    return figures
