"""``make bench-cluster``, producer step: replication factor 3 against 1."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from bench.cluster_stack import BenchError, Sizes, bootstrap, run
from bench.figures import Figure

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
