"""Step 5 of ``make bench``: the peak memory of ``make demo``, all its processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.figures import Figure, Sizes
from bench.probes import MemorySampler
from services.kafka import LocalKafka, free_port
from services.settings import PROJECT_ROOT

# -- 5. memory of make demo --------------------------------------------------------------------


# The processes of `make demo` by role, told apart by their command lines (test_demo.py
# checks each role is found in a real demo's process tree).
DEMO_ROLES = {
    "broker": lambda line: "kafka.Kafka" in line,
    "producer": lambda line: "-m producer" in line,
    "spark": lambda line: "spark" in line.lower() or "count_logins" in line,
}


def bench_memory(sizes: Sizes, work: Path) -> list[Figure]:
    port = free_port()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{port}",
           "PIPELINE_LOCAL_DIR": str(work / "demo-local")}  # fmt: skip
    sampler = MemorySampler(roles=DEMO_ROLES)
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
