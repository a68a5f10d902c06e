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
import shutil
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from bench.alerts import bench_alerts
from bench.components import bench_profile
from bench.drain import bench_drain
from bench.figures import FULL, SMOKE, Figure
from bench.live import bench_latency, bench_sustained
from bench.memory import bench_memory
from bench.probes import machine_description
from bench.producing import bench_generation, bench_producer
from bench.regression import committed_baseline, compare
from bench.report import render, with_kept_sections
from services.kafka import LocalKafka, free_port
from services.settings import PROJECT_ROOT

BASELINE = PROJECT_ROOT / "docs" / "PERFORMANCE.json"
STEPS = ("generation", "producer", "drain", "alerts", "profile", "latency", "sustained", "memory")


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
        if {"producer", "drain", "alerts", "profile", "latency", "sustained"} & set(steps):
            broker.start()
        if "producer" in steps:
            figures += tagged("producer", bench_producer(broker, sizes, work))
        if "drain" in steps:
            figures += tagged("drain", bench_drain(broker, sizes, work))
        if "alerts" in steps:
            figures += tagged("alerts", bench_alerts(broker, sizes, work))
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
