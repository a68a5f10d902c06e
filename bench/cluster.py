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
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from bench.cluster_replication import bench_replication
from bench.cluster_stack import (
    END,
    FULL,
    PROJECT,
    SMOKE,
    START,
    BenchError,
    Sizes,
    make,
    refuse_existing_data,
    run,
)
from bench.cluster_workers import bench_workers
from bench.figures import Figure
from services.settings import PROJECT_ROOT, read_env_file

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
    from scripts.docker_report import write_section

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
    write_section(args.output, section, START, END)
    results = PROJECT_ROOT / "output" / "bench" / "cluster.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps([{**asdict(f), "ratio": f.ratio} for f in figures], indent=2))
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
