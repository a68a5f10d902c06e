"""``make bench``: the pipeline's speed next to Kafka's own tools, measured in one run.

    python -m bench.run                # full run (5 to 10 minutes), writes docs/PERFORMANCE.md
    python -m bench.run --smoke        # seconds-sized version of every step (used by make test)

Every figure is measured on one local broker in the same run as its reference, because
these machines are shared and noisy: the ratio is what carries over between runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.components import bench_profile
from bench.drain import bench_drain
from bench.figures import FULL, SMOKE, Figure, Sizes
from bench.live import bench_latency, bench_sustained
from bench.probes import MemorySampler, kafka_tool, machine_description
from bench.regression import THRESHOLD, Change, committed_baseline, compare
from bench.topics import backfill_range, create_topic, free_port, run_producer
from producer.events import LoginEventGenerator, LoginRecord
from services.kafka import LocalKafka
from services.settings import PROJECT_ROOT

PRODUCER_SETTINGS = {"acks": "all", "linger_ms": 20, "batch_size": 256 * 1024,
                     "compression": "lz4"}  # fmt: skip


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


# -- 5. memory of make demo --------------------------------------------------------------------


def bench_memory(sizes: Sizes, work: Path) -> list[Figure]:
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{port}",
           "PIPELINE_LOCAL_DIR": str(work / "demo-local")}  # fmt: skip
    sampler = MemorySampler(roles={
        "broker": lambda line: "kafka.Kafka" in line,
        "producer": lambda line: "-m producer" in line,
        "spark": lambda line: "spark" in line.lower() or "count_logins" in line,
    })  # fmt: skip
    demo = subprocess.Popen(
        [sys.executable, "-m", "services.demo", "--count", str(sizes.demo), "--output-dir",
         str(work / "demo-out")],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    sampler.roots.append(demo.pid)
    sampler.start()
    output, _ = demo.communicate(timeout=900)
    sampler.stop()
    # The broker outlives the demo (it detaches); stop it.
    LocalKafka(home=work / "demo-local" / "kafka", port=port, controller_port=port + 1).stop()
    assert demo.returncode == 0, output.decode()[-3000:]
    peaks = ", ".join(f"{role} {value / 2**20:,.0f} MiB" for role, value in sampler.peaks.items())
    total_gb = sampler.peak_total / 1e9
    return [Figure(
        "Peak memory (RSS) of make demo, all processes", total_gb, "GB",
        "target", 2.5, "<= 2.5 GB", total_gb <= 2.5, "make demo",
        f"peaks per role: {peaks}",
    )]  # fmt: skip


# -- report ------------------------------------------------------------------------------------


# What limits the figures and what was tried is prose about measurements: it lives in
# docs/PERFORMANCE.md between these markers, edited by hand, and every run keeps it.
NOTES_START = "<!-- notes: edited by hand; make bench keeps this section -->"
NOTES_END = "<!-- /notes -->"
NOTES_PLACEHOLDER = "## What limits the figures, and what was tried\n\n(To be written.)\n"


def with_kept_sections(report: str, page: Path) -> str:
    """Keep the hand-written notes and the sections that ``make test-docker``,
    ``make test-dashboard``, ``make test-cluster`` and ``make bench-cluster`` wrote."""
    from bench import cluster
    from scripts import dashboard_report, docker_report

    old = page.read_text() if page.exists() else ""
    for start, end in ((NOTES_START, NOTES_END), (docker_report.START, docker_report.END),
                       (dashboard_report.START, dashboard_report.END),
                       (docker_report.CLUSTER_START, docker_report.CLUSTER_END),
                       (cluster.START, cluster.END)):  # fmt: skip
        if start in old and end in old:
            kept = start + old.split(start, 1)[1].split(end, 1)[0] + end
            report = docker_report.replace_section(report, kept, start, end)
    return report


def render(
    figures: list[Figure],
    machine: dict[str, str],
    sizes: Sizes,
    smoke: bool,
    changes: dict[str, Change] | None = None,
) -> str:
    """The Markdown page; ``changes`` (from :mod:`bench.regression`) fill "vs last"."""
    changes = changes or {}
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Performance",
        "",
        "Measured by `make bench` (`python -m bench.run`) on one local Kafka broker, every "
        "figure next to a reference measured in the same run on the same broker. These "
        "machines are shared and noisy: compare ratios, not absolute numbers, between runs.",
        "",
        f"Run: {when}{' (smoke sizes: not representative)' if smoke else ''}.",
        "",
        "Machine: " + "; ".join(f"{k} {v}" for k, v in machine.items()) + ".",
        "",
        '"vs last" compares each ratio with the one in the last committed '
        "`docs/PERFORMANCE.json` (higher is better for rates, lower for times); a drop of "
        f"more than {THRESHOLD:.0%} is marked as a regression.",
        "",
        "| Figure | Value | Reference | Reference value | Ratio | vs last | Target | Met | "
        "Details |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio:.2f}"
        reference = "" if f.reference_value is None else f"{f.reference_value:,.2f}"
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        value = f"{f.value:,.2f} {f.unit}" if f.value < 100 else f"{f.value:,.0f} {f.unit}"
        change = changes[f.name].describe() if f.name in changes else ""
        lines.append(f"| {f.name} | {value} | {f.reference} | {reference} | {ratio} | "
                     f"{change} | {f.target} | {met} | {f.detail} |")  # fmt: skip
    lines += ["", NOTES_START, NOTES_PLACEHOLDER, NOTES_END]
    lines += ["", "## How to reproduce", ""]
    lines += [
        "Each figure alone (its reference is measured again with it): "
        "`python -m bench.run --steps STEP --output /tmp/performance.md`.",
        "",
    ]
    lines += [f"- {f.name}: `--steps {f.step}`; measures `{f.command}`" for f in figures]
    lines += ["", f"Sizes: {asdict(sizes)}."]
    return "\n".join(lines) + "\n"


BASELINE = PROJECT_ROOT / "docs" / "PERFORMANCE.json"
STEPS = ("generation", "producer", "drain", "profile", "latency", "sustained", "memory")


def tagged(step: str, figures: list[Figure]) -> list[Figure]:
    for figure in figures:
        figure.step = step
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for make test")
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "docs" / "PERFORMANCE.md")
    parser.add_argument(
        "--steps",
        default=",".join(STEPS),
        help=f"comma-separated subset of {','.join(STEPS)} (default: all)",
    )
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL
    steps = args.steps.split(",")
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {','.join(unknown)}; choose from {','.join(STEPS)}")
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    broker = LocalKafka(home=work / "kafka", port=free_port(), controller_port=free_port(),
                        heap=os.environ.get("BENCH_KAFKA_HEAP", "1g"))  # fmt: skip
    figures: list[Figure] = []
    try:
        if "generation" in steps:
            figures += tagged("generation", bench_generation(sizes))
        if {"producer", "drain", "profile", "latency", "sustained"} & set(steps):
            broker.start()
        if "producer" in steps:
            figures += tagged("producer", bench_producer(broker, sizes, work))
        if "drain" in steps:
            figures += tagged("drain", bench_drain(broker, sizes, work))
        if "profile" in steps:
            figures += tagged("profile", bench_profile(broker, sizes, work))
        if "latency" in steps:
            figures += tagged("latency", bench_latency(broker, sizes, work))
        if "sustained" in steps:
            figures += tagged("sustained", bench_sustained(broker, sizes, work))
    finally:
        broker.stop()
    if "memory" in steps:
        figures += tagged("memory", bench_memory(sizes, work))
    for figure in figures:  # the bench broker's port changes every run
        figure.command = figure.command.replace(broker.bootstrap_servers, "<broker>")
    baseline = [] if args.smoke else committed_baseline(BASELINE, PROJECT_ROOT)
    changes = compare(baseline, [(f.name, f.ratio, f.higher_is_better) for f in figures])
    for change in changes.values():
        if change.regressed:
            print(f"regression: {change.name}: {change.describe()}", file=sys.stderr)
    report = render(figures, machine_description(), sizes, args.smoke, changes)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(with_kept_sections(report, args.output))
    (args.output.with_suffix(".json")).write_text(
        json.dumps([{**asdict(f), "ratio": f.ratio} for f in figures], indent=2) + "\n"
    )
    print(report)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
