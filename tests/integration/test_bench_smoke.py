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

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_smoke_runs_every_step_and_reports_each_figure_with_its_reference(tmp_path):
    output = tmp_path / "PERFORMANCE.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--output", str(output)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {f["name"]: f for f in json.loads(output.with_suffix(".json").read_text())}
    assert {f["step"] for f in figures.values()} == set(STEPS)
    references = {name: f["reference"] for name, f in figures.items()}
    assert references["Event generation (no Kafka)"] == "Faker called for every field"
    assert references["Producer (kafka-python), generation included"] == (
        "bare kafka-python loop, pre-built records"
    )
    sustained_name = "Highest sustained rate (live, 1s trigger, flat lag for 12 s)"
    for name, figure in figures.items():
        assert figure["reference_value"] > 0, name
        assert figure["value"] > 0 or name == sustained_name, name
    perf_test = figures["Producer (kafka-python) vs Kafka's tool"]
    assert perf_test["command"].startswith("kafka-producer-perf-test --topic bench-perf")
    # Reproducible as written: the bench broker's random port is not in the command.
    assert "bootstrap.servers=<broker>" in perf_test["command"]
    # The drain's counts were checked against what was sent, at the smoke size, and its
    # reference is the minimal Spark job run on the same topic.
    drain = figures["Spark job drain (available-now, deduplication on), session start excluded"]
    assert drain["reference"].startswith("minimal tutorial Spark job (bench/minimal_job.py)")
    assert drain["detail"].startswith(f"{SMOKE.drain:,} events; queries ")
    assert drain["detail"].endswith(f"counts checked ({SMOKE.drain:,}) in every run")
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
    # Every step is reported with its lag, and the figure is the last step held: the one
    # before the first step marked as growing or out of the producer's reach (a loaded
    # machine may not hold even the smoke rates, so which step that is is not fixed here).
    steps = figures[sustained_name]["detail"].split("; ")
    assert steps[0].startswith(f"{SMOKE.sustained_rates[0]:,}/s: lag ")
    held = [s for s in steps if "(growing)" not in s and "(producer reached" not in s]
    assert steps[: len(held)] == held
    expected = int(held[-1].split("/s")[0].replace(",", "")) if held else 0
    assert figures[sustained_name]["value"] == expected
    memory = figures["Peak memory (RSS) of make demo, all processes"]
    assert all(role in memory["detail"] for role in ("broker", "producer", "spark"))
    text = output.read_text()
    assert "(smoke sizes: not representative)" in text
    for name in figures:
        assert f"| {name} |" in text, name
    assert "- Event generation (no Kafka): `--steps generation`" in text
