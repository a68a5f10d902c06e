"""make bench, seconds-sized: every step runs and reports a figure next to its reference.

No timing is asserted here (benchmarks measure, tests check); the full run is `make bench`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from services.settings import PROJECT_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_bench_smoke_reports_each_figure_with_its_reference(tmp_path):
    output = tmp_path / "PERFORMANCE.md"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--smoke",
            "--steps",
            "generation,producer",
            "--output",
            str(output),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = {f["name"]: f for f in json.loads(output.with_suffix(".json").read_text())}
    assert figures["Event generation (no Kafka)"]["reference"] == "Faker called for every field"
    producer = figures["Producer (kafka-python), generation included"]
    assert producer["reference"] == "bare kafka-python loop, pre-built records"
    assert producer["value"] > 0 and producer["reference_value"] > 0
    assert producer["ratio"] == pytest.approx(producer["value"] / producer["reference_value"])
    perf_test = figures["Producer (kafka-python) vs Kafka's tool"]
    assert perf_test["command"].startswith("kafka-producer-perf-test --topic bench-perf")
    # Reproducible as written: the bench broker's random port is not in the command.
    assert "bootstrap.servers=<broker>" in perf_test["command"]
    assert {f["step"] for f in figures.values()} == {"generation", "producer"}
    text = output.read_text()
    assert "(smoke sizes: not representative)" in text
    assert "| Producer (kafka-python), generation included |" in text
    assert "- Event generation (no Kafka): `--steps generation`" in text
