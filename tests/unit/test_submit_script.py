"""consumer/submit.sh builds the spark-submit line from the Spark it will run on.

A stand-in SPARK_HOME with a recording ``spark-submit`` shows the exact command line for
Spark versions other than the installed one; the integration tests run the real thing.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

from services.settings import PROJECT_ROOT

SUBMIT = PROJECT_ROOT / "consumer" / "submit.sh"


def fake_spark_home(tmp_path: Path, core_jar: str) -> Path:
    home = tmp_path / "spark"
    (home / "jars").mkdir(parents=True)
    (home / "bin").mkdir()
    (home / "jars" / core_jar).touch()
    recorder = home / "bin" / "spark-submit"
    recorder.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "$SPARK_ARGS_FILE"\n')
    recorder.chmod(0o755)
    return home


def run_submit(tmp_path: Path, home: Path, *args: str, **env: str) -> list[str]:
    args_file = tmp_path / "args"
    full_env = {
        "PATH": os.environ["PATH"],
        "SPARK_HOME": str(home),
        "SPARK_ARGS_FILE": str(args_file),
        **env,
    }
    subprocess.run([str(SUBMIT), *args], env=full_env, check=True, capture_output=True)
    return args_file.read_text().splitlines()


@pytest.mark.parametrize(
    ("core_jar", "connector"),
    [
        ("spark-core_2.13-4.0.0.jar", "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"),
        ("spark-core_2.12-3.5.6.jar", "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.6"),
        (
            "spark-core_2.13-4.1.0-preview2.jar",
            "org.apache.spark:spark-sql-kafka-0-10_2.13:4.1.0-preview2",
        ),
    ],
)
def test_connector_matches_the_running_spark(tmp_path, core_jar, connector):
    args = run_submit(tmp_path, fake_spark_home(tmp_path, core_jar), "--trigger", "available-now")
    assert args[args.index("--packages") + 1] == connector
    assert args[-3:] == [
        str(PROJECT_ROOT / "consumer" / "monthly_logins.py"),
        "--trigger",
        "available-now",
    ]


def test_master_ivy_and_extra_options_come_from_the_environment(tmp_path):
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    args = run_submit(
        tmp_path,
        home,
        CONSUMER_SPARK_MASTER="spark://spark-master:7077",
        SPARK_IVY_DIR="/tmp/ivy",
        SPARK_SUBMIT_EXTRA="--conf a=b",
    )
    line = shlex.join(args)
    assert "--master spark://spark-master:7077" in line
    assert "--conf spark.jars.ivy=/tmp/ivy" in line
    assert "--conf a=b" in line


def test_default_master_is_local(tmp_path):
    args = run_submit(tmp_path, fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar"))
    assert args[args.index("--master") + 1] == "local[*]"


def test_unknown_spark_layout_is_a_clear_error(tmp_path):
    home = tmp_path / "empty"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "spark-submit").write_text("#!/bin/sh\n")
    (home / "bin" / "spark-submit").chmod(0o755)
    result = subprocess.run(
        [str(SUBMIT)],
        env={"PATH": os.environ["PATH"], "SPARK_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot tell the Spark version" in result.stderr
