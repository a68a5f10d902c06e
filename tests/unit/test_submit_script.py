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
    """The stand-in's arguments. The class archive is off unless a test turns it on: it
    would otherwise be recorded under the real ``~/.ivy2.5.2``."""
    args_file = tmp_path / "args"
    full_env = {
        "PATH": os.environ["PATH"],
        "SPARK_HOME": str(home),
        "SPARK_ARGS_FILE": str(args_file),
        "CONSUMER_CLASS_ARCHIVE": "off",
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
        str(PROJECT_ROOT / "consumer" / "count_logins.py"),
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


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CONSUMER_PYTHONPATH": "/opt/pipeline/db-libs"}, "/opt/pipeline/db-libs"),
        ({"CONSUMER_PYTHONPATH": "/libs", "PYTHONPATH": "/image/path"}, "/libs:/image/path"),
        ({"PYTHONPATH": "/image/path"}, "/image/path"),
        ({}, ""),
    ],
)
def test_extra_python_paths_go_first_on_the_drivers_pythonpath(tmp_path, env, expected):
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    (home / "bin" / "spark-submit").write_text(
        '#!/usr/bin/env bash\nprintf "%s" "${PYTHONPATH:-}" > "$SPARK_ARGS_FILE"\n'
    )
    args_file = tmp_path / "args"
    base = {"PATH": os.environ["PATH"], "SPARK_HOME": str(home), "SPARK_ARGS_FILE": str(args_file),
            "CONSUMER_CLASS_ARCHIVE": "off"}  # fmt: skip
    subprocess.run([str(SUBMIT)], env={**base, **env}, check=True, capture_output=True)
    assert args_file.read_text() == expected


def test_default_master_is_local_with_three_task_attempts(tmp_path):
    args = run_submit(tmp_path, fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar"))
    assert args[args.index("--master") + 1] == "local[*,3]"


@pytest.mark.parametrize(
    ("master", "given"),
    [
        ("local", "local[1,3]"),
        ("local[2]", "local[2,3]"),
        ("local[*]", "local[*,3]"),
        ("local[2,5]", "local[2,5]"),  # attempts of the user's own are kept
        ("spark://spark-master:7077", "spark://spark-master:7077"),
    ],
)
def test_a_local_master_gets_task_attempts_a_cluster_is_left_alone(tmp_path, master, given):
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    args = run_submit(tmp_path, home, CONSUMER_SPARK_MASTER=master)
    assert args[args.index("--master") + 1] == given


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "127.0.0.1"),  # local: Spark's UI, RPC and block manager on loopback only
        ({"CONSUMER_SPARK_MASTER": "local[2]"}, "127.0.0.1"),
        ({"SPARK_LOCAL_IP": "10.1.2.3"}, "10.1.2.3"),  # the user's own choice wins
        ({"CONSUMER_SPARK_MASTER": "spark://spark-master:7077"}, ""),  # executors must reach it
    ],
)
def test_a_local_run_binds_spark_to_loopback(tmp_path, env, expected):
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    (home / "bin" / "spark-submit").write_text(
        '#!/usr/bin/env bash\nprintf "%s" "${SPARK_LOCAL_IP:-}" > "$SPARK_ARGS_FILE"\n'
    )
    args_file = tmp_path / "args"
    base = {"PATH": os.environ["PATH"], "SPARK_HOME": str(home), "SPARK_ARGS_FILE": str(args_file),
            "CONSUMER_CLASS_ARCHIVE": "off"}  # fmt: skip
    subprocess.run([str(SUBMIT)], env={**base, **env}, check=True, capture_output=True)
    assert args_file.read_text() == expected


def test_unknown_spark_layout_is_a_clear_error(tmp_path):
    home = tmp_path / "empty"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "spark-submit").write_text("#!/bin/sh\n")
    (home / "bin" / "spark-submit").chmod(0o755)
    result = subprocess.run(
        [str(SUBMIT)],
        env={"PATH": os.environ["PATH"], "SPARK_HOME": str(home), "CONSUMER_CLASS_ARCHIVE": "off"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot tell the Spark version" in result.stderr


def connector_list(ivy: Path, connector: str) -> Path:
    return ivy / "connector-jars" / f"{connector.replace(':', '_')}.txt"


def test_a_resolved_connector_is_handed_to_spark_as_jars(tmp_path):
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    ivy = tmp_path / "ivy"
    jars = [tmp_path / "spark-sql-kafka.jar", tmp_path / "kafka-clients.jar"]
    for jar in jars:
        jar.touch()
    listed = connector_list(ivy, "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0")
    listed.parent.mkdir(parents=True)
    listed.write_text("".join(f"{jar}\n" for jar in jars))
    args = run_submit(tmp_path, home, SPARK_IVY_DIR=str(ivy))
    assert args[args.index("--jars") + 1] == ",".join(str(jar) for jar in jars)
    assert "--packages" not in args


def test_a_missing_jar_or_another_spark_version_falls_back_to_packages(tmp_path):
    ivy = tmp_path / "ivy"
    listed = connector_list(ivy, "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0")
    listed.parent.mkdir(parents=True)
    listed.write_text(f"{tmp_path / 'gone.jar'}\n")
    # The stand-in Spark has no Ivy jar, so nothing can be resolved here: --packages it is.
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    args = run_submit(tmp_path, home, SPARK_IVY_DIR=str(ivy))
    assert args[args.index("--packages") + 1] == "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
    assert "--jars" not in args
    other = tmp_path / "other"
    other.mkdir()
    (tmp_path / "gone.jar").touch()  # listed for 4.0.0, which the Spark below is not
    args = run_submit(other, fake_spark_home(other, "spark-core_2.13-4.0.1.jar"),
                      SPARK_IVY_DIR=str(ivy))  # fmt: skip
    assert args[args.index("--packages") + 1] == "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.1"


def test_ivy_resolves_once_and_jars_spark_has_are_left_out(tmp_path):
    """A stand-in ``java`` plays Ivy: it writes the classpath Ivy would, and counts calls."""
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    (home / "jars" / "ivy-2.5.3.jar").touch()
    (home / "jars" / "lz4-java-1.8.0.jar").touch()  # Spark ships this one
    cache = tmp_path / "ivy" / "cache"
    resolved = [cache / "spark-sql-kafka-0-10_2.13-4.0.0.jar", cache / "lz4-java-1.8.0.jar",
                cache / "kafka-clients-3.9.0.jar"]  # fmt: skip
    cache.mkdir(parents=True)
    for jar in resolved:
        jar.touch()
    java_home = tmp_path / "jdk"
    (java_home / "bin").mkdir(parents=True)
    calls = tmp_path / "java-calls"
    java = java_home / "bin" / "java"
    java.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        "while [[ $# -gt 0 ]]; do [[ $1 == -cachepath ]] && out=$2; shift; done\n"
        f'printf %s "{":".join(str(j) for j in resolved)}" > "$out"\n'
    )
    java.chmod(0o755)
    env = {"SPARK_IVY_DIR": str(tmp_path / "ivy"), "JAVA_HOME": str(java_home)}
    first = run_submit(tmp_path, home, **env)
    second = run_submit(tmp_path, home, **env)
    expected = f"{resolved[0]},{resolved[2]}"
    assert first[first.index("--jars") + 1] == expected
    assert second[second.index("--jars") + 1] == expected
    (call,) = calls.read_text().splitlines()  # the second start did not resolve again
    assert "-dependency org.apache.spark spark-sql-kafka-0-10_2.13 4.0.0" in call
    assert f"-cache {cache}" in call


def archive_recording_spark_home(tmp_path: Path, records: bool = True) -> Path:
    """A stand-in spark-submit that logs each call's script and, for the recording run,
    writes the archive named by ``-XX:ArchiveClassesAtExit`` as the JVM would at exit."""
    home = fake_spark_home(tmp_path, "spark-core_2.13-4.0.0.jar")
    write = 'printf "classes" > "${BASH_REMATCH[1]}"' if records else "exit 1"
    (home / "bin" / "spark-submit").write_text(
        "#!/usr/bin/env bash\n"
        'printf "%s\\n" "$@" > "$SPARK_ARGS_FILE"\n'
        'for arg in "$@"; do [[ $arg == *.py ]] && echo "$arg" >> "$SPARK_ARGS_FILE.calls"; done\n'
        'if [[ "$*" =~ -XX:ArchiveClassesAtExit=([^ ]+) ]]; then ' + write + "; fi\n"
    )
    return home


def scripts_run(tmp_path: Path) -> list[str]:
    return [Path(line).name for line in (tmp_path / "args.calls").read_text().splitlines()]


def driver_java_options(args: list[str]) -> str:
    (option,) = [a for a in args if a.startswith("spark.driver.extraJavaOptions=")]
    return option


def test_the_first_start_records_the_class_archive_and_later_starts_map_it(tmp_path):
    home = archive_recording_spark_home(tmp_path)
    env = {"SPARK_IVY_DIR": str(tmp_path / "ivy"), "CONSUMER_CLASS_ARCHIVE": "on"}
    first = run_submit(tmp_path, home, "--trigger", "available-now", **env)
    (archive,) = (tmp_path / "ivy" / "class-archives").glob("spark-4.0.0-*.jsa")
    assert archive.read_text() == "classes"
    assert scripts_run(tmp_path) == ["class_archive.py", "count_logins.py"]
    assert f"-XX:SharedArchiveFile={archive}" in driver_java_options(first)
    assert "-Dlog4j2.configurationFile=" in driver_java_options(first)
    second = run_submit(tmp_path, home, **env)
    assert scripts_run(tmp_path) == ["class_archive.py", "count_logins.py", "count_logins.py"]
    assert f"-XX:SharedArchiveFile={archive}" in driver_java_options(second)
    assert list(archive.parent.iterdir()) == [archive]  # no recording or log left behind


def test_prepare_records_the_archive_without_running_the_job(tmp_path):
    home = archive_recording_spark_home(tmp_path)
    run_submit(tmp_path, home, "--prepare", SPARK_IVY_DIR=str(tmp_path / "ivy"),
               CONSUMER_CLASS_ARCHIVE="on")  # fmt: skip
    assert scripts_run(tmp_path) == ["class_archive.py"]
    assert len(list((tmp_path / "ivy" / "class-archives").glob("*.jsa"))) == 1


def test_a_failed_recording_is_said_once_and_the_job_starts_without_an_archive(tmp_path):
    home = archive_recording_spark_home(tmp_path, records=False)
    env = {"PATH": os.environ["PATH"], "SPARK_HOME": str(home), "CONSUMER_CLASS_ARCHIVE": "on",
           "SPARK_ARGS_FILE": str(tmp_path / "args"),
           "SPARK_IVY_DIR": str(tmp_path / "ivy")}  # fmt: skip
    first = subprocess.run([str(SUBMIT)], env=env, capture_output=True, text=True, check=False)
    (log,) = (tmp_path / "ivy" / "class-archives").glob("*.jsa.log")
    assert f"could not record the classes (see {log}); starting without them" in first.stderr
    assert "no class archive" in first.stderr
    assert "SharedArchiveFile" not in (tmp_path / "args").read_text()
    second = subprocess.run([str(SUBMIT)], env=env, capture_output=True, text=True, check=False)
    assert "could not record" not in second.stderr  # not tried again on every start
    assert scripts_run(tmp_path) == ["class_archive.py", "count_logins.py", "count_logins.py"]


def test_the_archive_is_per_java_and_spark_install_and_can_be_turned_off(tmp_path):
    home = archive_recording_spark_home(tmp_path)
    env = {"SPARK_IVY_DIR": str(tmp_path / "ivy"), "CONSUMER_CLASS_ARCHIVE": "on"}
    run_submit(tmp_path, home, "--prepare", **env)
    (home / "jars" / "spark-sql_2.13-4.0.0.jar").touch()  # Spark's jars changed
    run_submit(tmp_path, home, "--prepare", **env)
    assert len(list((tmp_path / "ivy" / "class-archives").glob("*.jsa"))) == 2
    off = run_submit(tmp_path, home, **{**env, "CONSUMER_CLASS_ARCHIVE": "off"})
    assert "SharedArchiveFile" not in driver_java_options(off)
    assert scripts_run(tmp_path)[-1] == "count_logins.py"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_asking_for_help_does_not_record_the_archive(tmp_path, flag):
    home = archive_recording_spark_home(tmp_path)
    env = {"SPARK_IVY_DIR": str(tmp_path / "ivy"), "CONSUMER_CLASS_ARCHIVE": "on"}
    args = run_submit(tmp_path, home, flag, **env)
    assert scripts_run(tmp_path) == ["count_logins.py"]
    assert flag in args
    assert not (tmp_path / "ivy" / "class-archives").exists()
