"""make bench, smoke-sized: every step runs and reports a figure next to its reference.

No timing is asserted here (benchmarks measure, tests check); the full run is `make bench`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.run import SMOKE, STEPS
from services.settings import PROJECT_ROOT

# Beside the Docker tests on 2 cores it can take longer than the suite's 600 s limit.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.bench,
    pytest.mark.timeout(1500),
]


# Every step but memory, which runs `make demo` once more: test_demo.py runs it twice and
# checks that the step's process roles are found in it.
SMOKE_STEPS = [step for step in STEPS if step != "memory"]


def test_bench_smoke_runs_every_step_and_reports_each_figure_with_its_reference(tmp_path):
    output = tmp_path / "PERFORMANCE.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--output",
            str(output),
            "--steps",
            ",".join(SMOKE_STEPS),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {f["name"]: f for f in json.loads(output.with_suffix(".json").read_text())}
    assert {f["step"] for f in figures.values()} == set(SMOKE_STEPS)
    references = {name: f["reference"] for name, f in figures.items()}
    assert references["Event generation (no Kafka)"] == "Faker called for every field"
    assert references["Producer (kafka-python), generation included"] == (
        "bare kafka-python loop, pre-built records"
    )
    sustained_name = "Highest sustained rate (live, 1s trigger, each step 12 s)"
    for name, figure in figures.items():
        assert figure["reference_value"] > 0, name
        # A component's CPU is a difference of two queries' CPU: at smoke sizes, noise.
        assert figure["value"] > 0 or name == sustained_name or figure["step"] == "profile", name
    perf_test = figures["Producer (kafka-python) vs Kafka's tool"]
    assert perf_test["command"].startswith("kafka-producer-perf-test --topic bench-perf")
    # Reproducible as written: the bench broker's random port is not in the command.
    assert "bootstrap.servers=<broker>" in perf_test["command"]
    # The drain's counts were checked against what was sent, at the smoke size, for both
    # jobs, and its reference is the minimal Spark job on the same topic at the job's own
    # shuffle partitions; the run with Spark's default 200 is context.
    for name in ("deduplication on", "--dedupe-window 0"):
        drain = figures[f"Spark job drain vs the minimal job at equal settings ({name})"]
        assert drain["reference"].startswith("minimal tutorial Spark job (bench/minimal_job.py)")
        assert drain["reference"].endswith("at the job's 4 shuffle partitions")
        assert drain["detail"].endswith(f"counts checked ({SMOKE.drain:,}) in every run of both")
    context = figures["Spark job drain (available-now, deduplication on), session start excluded"]
    assert context["reference"].startswith(
        "(context) the same minimal job with Spark's default 200"
    )
    assert context["reference_value"] != drain["reference_value"]
    # Where a record's CPU goes: every component next to the minimal query's whole cost.
    components = [f for f in figures.values() if f["step"] == "profile"]
    assert {f["unit"] for f in components} == {"µs/record"}
    assert any(f["name"].startswith("CPU per record: drop repeated ids, state in RocksDB")
               for f in components)  # fmt: skip
    assert (
        figures["CPU per record: the whole job (deduplication in memory, as a drain runs it)"][
            "value"
        ]
        > 0
    )
    start_up = figures["Start-up: spark-submit to the first batch"]
    assert start_up["higher_is_better"] is False
    assert start_up["value"] < 120 and start_up["reference_value"] < 120
    assert start_up["detail"].endswith("from the class archive recorded once")
    no_archive = figures["Start-up without the class archive (CONSUMER_CLASS_ARCHIVE=off)"]
    assert no_archive["reference_value"] == start_up["reference_value"]
    assert no_archive["higher_is_better"] is False
    latency = figures["End-to-end latency p95 (live, 1s trigger)"]
    assert f"at {SMOKE.latency_rate:,} events/s" in latency["detail"]
    assert latency["higher_is_better"] is False
    # Every step is reported with its lag, and the steps held come first; the figure is
    # what the job committed at the first rate it could not hold (median of the runs at
    # that rate: one at smoke sizes), or the last rate held if it held every one (a loaded
    # machine may not hold even the smoke rates, so which case it is is not fixed here).
    sustained = figures[sustained_name]
    steps = sustained["detail"].split("Steps: ", 1)[1].split("; ")
    assert steps[0].startswith(f"{SMOKE.sustained_rates[0]:,}/s: lag ")
    held = [s for s in steps if "(growing)" not in s and "(producer reached" not in s]
    assert steps[: len(held)] == held
    if sustained["detail"].startswith(("every rate held", "the producer could not reach")):
        assert sustained["value"] == (int(held[-1].split("/s")[0].replace(",", "")) if held else 0)
    else:
        committed = steps[-1].split("committed ", 1)[1].split("/s")[0].replace(",", "")
        assert abs(sustained["value"] - int(committed)) <= 1
    text = output.read_text()
    assert "(smoke sizes: not representative)" in text
    for name in figures:
        assert f"| {name} |" in text, name
    assert "- Event generation (no Kafka): `--steps generation`" in text
