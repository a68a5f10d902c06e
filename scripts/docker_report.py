"""Put the Docker stack's measured figures into docs/PERFORMANCE.md.

    make test-docker      # runs the walkthrough test, then this script

tests/integration/test_docker_walkthrough.py measures `make up` (cold and with cached
images) and the memory of all containers while `make submit` runs, and writes them to
output/docker/walkthrough.json; this script renders them as the section between the
markers below (``make bench`` keeps that section when it rewrites the rest of the page).
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
            "the local stand-ins of tests/docker/ (no registry is reachable here), so "
            "image pulls are not part of these times. Reproduce: `make test-docker`.",
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


def replace_section(page: str, section: str, start: str = START, end: str = END) -> str:
    """``page`` with the section between ``start`` and ``end`` replaced (or appended)."""
    if start in page and end in page:
        before, rest = page.split(start, 1)
        return before + section + rest.split(end, 1)[1]
    return page.rstrip("\n") + "\n\n" + section + "\n"


def main() -> int:
    if not RESULTS.exists():
        print(f"error: {RESULTS} is missing: run `make test-docker` first.", file=sys.stderr)
        return 1
    figures = json.loads(RESULTS.read_text())
    DOC.write_text(replace_section(DOC.read_text(), render(figures)))
    print(f"Updated the Docker stack section of {DOC.relative_to(ROOT)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
