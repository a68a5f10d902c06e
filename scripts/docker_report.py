"""Put the Docker stack's measured figures into docs/PERFORMANCE.md.

    make docs-docker      # runs the walkthrough test, then this script

tests/integration/test_docker_walkthrough.py measures `make up` (cold and with cached
images) and the memory of all containers while `make submit` runs, and writes them to
output/docker/walkthrough.json; this script renders them as the section between the
markers below (``make bench`` keeps that section when it rewrites the rest of the page).

    python scripts/docker_report.py --cluster   # make docs-cluster

renders the cluster topology's figures instead (output/cluster/cluster.json, from
tests/integration/test_docker_cluster.py): `make up TOPOLOGY=cluster`, the memory of all
containers through the drills, and how long the drills take (CI's budget).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "output" / "docker" / "walkthrough.json"
DOC = ROOT / "docs" / "PERFORMANCE.md"
START = "<!-- docker-stack: written by scripts/docker_report.py; do not edit by hand -->"
END = "<!-- /docker-stack -->"
MEMORY_TARGET_BYTES = 3 * 10**9
CLUSTER_RESULTS = ROOT / "output" / "cluster" / "cluster.json"
CLUSTER_START = (
    "<!-- cluster-stack: written by scripts/docker_report.py --cluster; do not edit by hand -->"
)
CLUSTER_END = "<!-- /cluster-stack -->"
CLUSTER_MEMORY_TARGET_BYTES = 6 * 10**9


def engine_version() -> str:
    result = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def render(figures: dict) -> str:
    peak = figures["submit_peak_memory_bytes"]
    by_container = ", ".join(
        f"{name.removeprefix('login-pipeline-').removesuffix('-1')} {size / 2**20:,.0f} MiB"
        for name, size in sorted(figures["submit_peak_memory_by_container"].items())
    )
    met = "yes" if peak <= MEMORY_TARGET_BYTES else "**no**"
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            START,
            "## Docker stack (`make test-docker`)",
            "",
            f"Run: {when}; Docker Engine {engine_version()}; Kafka, Spark and Python images: "
            "the local stand-ins of tests/images/ (no registry is reachable here), so "
            "image pulls are not part of these times. Reproduce: `make docs-docker`.",
            "",
            "| Figure | Value | Target | Met | Details |",
            "|---|---|---|---|---|",
            f"| `make up` until every service is healthy, cold | {figures['up_cold_s']:.1f} s "
            "| (context) |  | producer image built without build cache, new volumes |",
            f"| `make up` until every service is healthy, cached images | "
            f"{figures['up_cached_s']:.1f} s | (context) |  | after `make down`; volumes kept |",
            f"| Peak memory of all containers while `make submit` runs | {peak / 1e9:.2f} GB "
            f"| <= 3 GB (a default Docker Desktop VM) | {met} | largest sum over "
            f"{figures['memory_samples']} `docker stats` samples (page cache excluded): "
            f"{by_container} |",
            f"| `make submit` with Kafka stopped, until its error | "
            f"{figures['submit_without_kafka_s']:.1f} s | (context) |  | exit 3, "
            "`--connect-timeout 5` |",
            END,
        ]
    )


def by_container(sizes: dict[str, float]) -> str:
    return ", ".join(
        f"{name.removeprefix('login-pipeline-').removesuffix('-1')} {size / 2**20:,.0f} MiB"
        for name, size in sorted(sizes.items())
    )


def render_cluster(figures: dict) -> str:
    """The cluster topology's section: bring-up, memory through the drills, drill times."""
    peak = figures["peak_memory_bytes"]
    met = "yes" if peak <= CLUSTER_MEMORY_TARGET_BYTES else "**no**"
    phases = figures["phases_s"]
    drills = figures["drills"]
    drill_times = ", ".join(f"{name.replace('_', ' ')} {d['duration_s']:.0f} s"
                            for name, d in drills.items())  # fmt: skip
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            CLUSTER_START,
            "## Cluster topology (`make test-cluster`)",
            "",
            f"Run: {when}; Docker Engine {engine_version()}; three Kafka nodes and two Spark "
            f"workers (`make up TOPOLOGY=cluster`, {figures['family']} family), on the local "
            "stand-in images of tests/images/. Reproduce: `make docs-cluster`. The drills' "
            "rows are in [RELIABILITY.md](RELIABILITY.md).",
            "",
            "| Figure | Value | Target | Met | Details |",
            "|---|---|---|---|---|",
            f"| `make up TOPOLOGY=cluster` until every service is healthy | "
            f"{phases['make up']:.1f} s | (context) |  | images built or cached, new volumes |",
            f"| Peak memory of all containers, bring-up and drills | {peak / 1e9:.2f} GB | "
            f"<= 6 GB | {met} | largest sum over {figures['memory_samples']} `docker stats` "
            f"samples (page cache excluded): {by_container(figures['peak_memory_by_container'])} |",
            f"| The four drills | {sum(d['duration_s'] for d in drills.values()):.0f} s | "
            f"(context) |  | {drill_times} |",
            f"| The whole test module (what CI spends) | {figures['total_s'] / 60:.1f} min | "
            "(context) |  | "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in phases.items())
            + " |",
            CLUSTER_END,
        ]
    )


def replace_section(page: str, section: str, start: str = START, end: str = END) -> str:
    """``page`` with the section between ``start`` and ``end`` replaced (or appended)."""
    if start in page and end in page:
        before, rest = page.split(start, 1)
        return before + section + rest.split(end, 1)[1]
    return page.rstrip("\n") + "\n\n" + section + "\n"


def write_section(path: Path, section: str, start: str, end: str) -> None:
    """Write ``section`` into the page at ``path`` (:func:`replace_section`), creating it."""
    page = path.read_text() if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(page, section, start, end))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--cluster"]:
        if not CLUSTER_RESULTS.exists():
            print(f"error: {CLUSTER_RESULTS} is missing: run `make test-cluster` first.",
                  file=sys.stderr)  # fmt: skip
            return 1
        section = render_cluster(json.loads(CLUSTER_RESULTS.read_text()))
        write_section(DOC, section, CLUSTER_START, CLUSTER_END)
        print(f"Updated the cluster topology section of {DOC.relative_to(ROOT)}.")
        return 0
    if not RESULTS.exists():
        print(f"error: {RESULTS} is missing: run `make test-docker` first.", file=sys.stderr)
        return 1
    figures = json.loads(RESULTS.read_text())
    write_section(DOC, render(figures), START, END)
    print(f"Updated the Docker stack section of {DOC.relative_to(ROOT)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
