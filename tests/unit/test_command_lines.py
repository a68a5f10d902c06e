"""The command lines a person types, end to end, where no Kafka or Spark session is needed.

Exit statuses and messages as docs/USAGE.md promises them: usage errors (2), an unreachable
broker (3), an unreadable password file, `make report` with INPUT and OUTPUT, and the
demo's own check of its counts.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from services.demo import verdict
from services.settings import PROJECT_ROOT
from tests.support.kafka import free_port


def run(*command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(command),
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def producer(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "producer", "--progress", "none", *args, **env)


def job(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The job's own file, as spark-submit runs it: options are parsed before Spark starts."""
    return run(sys.executable, "consumer/count_logins.py", *args, **env)


def test_producer_usage_error_exits_2():
    result = producer("--count", "zero")
    assert result.returncode == 2
    assert result.stderr.endswith("error: argument --count: 'zero' is not a whole number\n")


def test_producer_unreachable_broker_exits_3_with_advice():
    result = producer(
        "--bootstrap-servers", f"localhost:{free_port()}", "--connect-timeout", "1s",
        "--count", "1",
    )  # fmt: skip
    assert result.returncode == 3
    assert "did not answer within 1s" in result.stderr and "make local-up" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("program", [producer, job])
def test_an_unreadable_password_file_is_a_usage_error(program, tmp_path):
    missing = tmp_path / "no-such-file"
    result = program(
        "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-512",
        "--sasl-username", "pipeline", "--sasl-password-file", str(missing),
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert str(missing) in result.stderr
    assert "No such file or directory" in result.stderr


def test_job_usage_error_exits_2_before_spark_starts():
    result = job("--trigger", "sometimes")
    assert result.returncode == 2
    assert "'sometimes' is not a trigger" in result.stderr
    assert "SparkSession" not in result.stderr and "Ivy" not in result.stderr


def test_make_report_takes_input_and_output(tmp_path):
    table = tmp_path / "in.csv"
    table.write_text("month,logins,successful,failed\n2025-01,10,9,1\n2025-02,30,27,3\n")
    chart = tmp_path / "chart.png"
    result = run("make", "--no-print-directory", "report", f"INPUT={table}", f"OUTPUT={chart}")
    assert result.returncode == 0, result.stderr
    assert f"Wrote {chart} (2 months, 40 logins)." in result.stdout
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_demo_fails_when_the_months_do_not_add_up():
    assert verdict(50_000, 50_000, 25) == (
        "OK: Kafka acknowledged 50,000 events; Spark counted 50,000 logins in 25 months.",
        0,
    )
    line, status = verdict(50_000, 49_999, 25)
    assert status == 1 and line.startswith("MISMATCH: Kafka acknowledged 50,000 events; ")
    assert verdict(3, 4, 1)[1] == 1  # more counted than sent is as wrong as fewer
