"""The Docker walkthrough of docs/DOCKER.md on a real Docker engine, through the real Makefile
targets, once per image family: Bitnami's (the default) and the official Apache images
(STACK=apache).

`make up`, `make submit ARGS="--trigger available-now"`, Ctrl-C on a live `make submit`
(with and without a terminal), `make down`, `make up` again, `make submit` again, a submit
with Kafka stopped, `make clean`. The images are local stand-ins with each family's interface
(tests/images/), passed as KAFKA_IMAGE / SPARK_IMAGE / APACHE_KAFKA_IMAGE / ... ; every count
is compared with the records read back independently through Kafka's published port
(127.0.0.1:9092, or the free port this run moved it to if something here holds 9092).

Where no engine can run (a laptop without Docker) the module is skipped with the reason;
under CI=true that is a failure. It refuses to touch a `login-pipeline` stack that exists,
unless an interrupted run of this test left it (tests.support.docker_stack.left_by_the_test). A run
that fails cleans up after itself (`make clean` in a finally).
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.probes import ContainerMemorySampler
from contract.alerts import AlertRule
from services.settings import PROJECT_ROOT
from tests.support.compose import FAMILY_FILES
from tests.support.conditions import wait_for
from tests.support.docker_stack import (
    BUILT_IMAGES,
    Stack,
    all_volumes,
    connect,
    dashboard_table,
    dashboard_url,
    database_alerts,
    database_monthly,
    expected_dashboard_rows,
    last_monthly_table,
    movable_ports,
    project_leftovers,
    published_port,
    records_read,
    refuse_a_users_stack,
    set_marker,
    stand_in_images,
    timed,
)
from tests.support.truth import as_failures, expected_alerts, expected_monthly

# A walkthrough takes 5 to 7 minutes beside make test's other streams: over the suite's
# 600 s limit would be a hang, not a slow machine.
pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.docker,
    pytest.mark.timeout(1200),
]

FAMILIES = tuple(FAMILY_FILES)  # bitnami first: its run builds the images both use
BACKFILL = 50_000
LIVE_AT_LEAST = 40  # two seconds of the producer's 20 events/s after its backfill
RESULTS = PROJECT_ROOT / "output" / "docker"


def results_dir(family: str) -> Path:
    """Bitnami's figures where scripts/docker_report.py reads them; the others beside."""
    return RESULTS if family == FAMILIES[0] else RESULTS / family


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """The stand-ins of both families, built once (or found by their content hash)."""
    return stand_in_images()


@pytest.fixture(scope="module", params=FAMILIES)
def stack(request: pytest.FixtureRequest, images: dict[str, str]) -> Iterator[Stack]:
    """One family's stack; ports that something on this machine holds are moved."""
    refuse_a_users_stack()
    moved = movable_ports()
    with pytest.MonkeyPatch.context() as patch:
        for variable, value in moved.items():
            print(f"{variable}={value}: the default port is taken on this machine")
            patch.setenv(variable, value)
        set_marker(True)
        yield Stack(images, request.param, moved_ports=moved)


def host_bootstrap() -> str:
    """Kafka's listener for this machine, as the stack publishes it."""
    return f"127.0.0.1:{published_port('KAFKA_HOST_PORT')}"


def topic_end() -> int:
    """Records on the topic (sum of end offsets), asked through the published port."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=host_bootstrap())
    try:
        partitions = consumer.partitions_for_topic("logins") or set()
        ends = consumer.end_offsets([TopicPartition("logins", p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def read_events(count: int) -> list[dict]:
    from tests.support.kafka import read_topic

    records = read_topic(host_bootstrap(), "logins", count, timeout_s=120)
    assert len(records) == count, f"read {len(records)} of {count} records back"
    return [json.loads(r.value) for r in records]


def wait_for_backfill_and_live_events(stack: Stack, already: int) -> int:
    """Wait until the producer's backfill and some live events are on the topic, stop it."""
    target = already + BACKFILL + LIVE_AT_LEAST

    def enough() -> bool:
        try:
            return topic_end() >= target
        except Exception:  # the broker's metadata may lag the container's health
            return False

    wait_for(enough, 300, f"{target:,} records on 'logins' (backfill, then live events)")
    stopped = stack.compose("stop", "producer")
    assert stopped.returncode == 0, stopped.stderr
    return topic_end()


def assert_table_matches(output: str, expected: dict[str, tuple[int, int, int]]) -> None:
    table = last_monthly_table(output)
    total = table.pop("total")
    assert table == expected
    assert total == tuple(sum(row[i] for row in expected.values()) for i in range(3))


def csv_table(stack: Stack) -> dict[str, tuple[int, int, int]]:
    text = stack.read_file("spark-master", "/data/output/monthly_logins/monthly_logins.csv")
    lines = text.strip().splitlines()
    assert lines[0] == "month,logins,successful,failed"
    rows = (line.split(",") for line in lines[1:])
    return {month: (int(a), int(b), int(c)) for month, a, b, c in rows}


def sql_error(connection, statement: str) -> str:
    """The SQLSTATE that ``statement`` fails with (it must fail)."""
    from pg8000.exceptions import DatabaseError

    try:
        connection.run(statement)
    except DatabaseError as exc:
        return exc.args[0]["C"]
    raise AssertionError(f"{statement!r} succeeded")


def assert_the_dashboard_role_reads_and_cannot_write(expected: dict) -> None:
    """The read-only role reads the job's tables; it can write nothing, even in a
    transaction it makes writable: no privilege on the tables, the schema or temp tables."""
    assert database_monthly(user="dashboard", env_file="dashboard") == expected
    insert = "INSERT INTO login_counts VALUES ('month', '1999-01', 1, 1, 0, 0)"
    connection = connect("dashboard", "dashboard")
    try:
        assert sql_error(connection, insert) == "25006"  # read-only transaction
        for statement in (
            insert,
            "UPDATE login_counts SET logins = 0",
            "DELETE FROM batch_progress",
            "CREATE TABLE mine (x int)",
            "CREATE TEMP TABLE mine (x int)",
        ):
            connection.run("START TRANSACTION READ WRITE")
            assert sql_error(connection, statement) == "42501", statement  # no privilege
            connection.run("ROLLBACK")
    finally:
        connection.close()
    assert database_monthly(user="dashboard", env_file="dashboard") == expected


def driver_processes(stack: Stack) -> str:
    """Python drivers of the job still running inside spark-master (empty if none)."""
    result = stack.compose("exec", "-T", "spark-master", "pgrep", "-af", "count_logins.py")
    return result.stdout.strip()


def interrupt_live_submit_without_terminal(stack: Stack) -> str:
    """`make submit` with stdin and stdout not a terminal, then Ctrl-C (SIGINT to its group)."""
    process = subprocess.Popen(
        ["make", "--no-print-directory", "submit", "ARGS=--trigger 2s"],
        cwd=PROJECT_ROOT,
        env=stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 180
    for line in process.stdout:
        lines.append(line)
        if "Ctrl-C stops" in line:
            os.killpg(process.pid, signal.SIGINT)
            break
        assert time.monotonic() < deadline, "no start line from the live job:\n" + "".join(lines)
    rest, _ = process.communicate(timeout=120)
    return "".join(lines) + rest


def interrupt_live_submit_in_a_terminal(stack: Stack) -> str:
    """`make submit` on a pseudo-terminal, then the Ctrl-C character typed into it."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: make, with the pty as its terminal
        os.chdir(PROJECT_ROOT)
        os.execvpe(
            "make", ["make", "--no-print-directory", "submit", "ARGS=--trigger 2s"], stack.env
        )
    output = b""
    typed = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: make exited
                break
            if not chunk:
                break
            output += chunk
        if not typed and b"Ctrl-C stops" in output:
            os.write(fd, b"\x03")
            typed = True
    os.waitpid(pid, 0)
    os.close(fd)
    return output.decode(errors="replace")


def test_readme_walkthrough_on_a_real_engine(stack: Stack):
    measured: dict[str, object] = {"family": stack.family, "moved_ports": stack.moved_ports}
    volumes_before = all_volumes()
    cold = stack.family == FAMILIES[0]
    clean = None
    try:
        if cold:
            # The images of the compose files are built from scratch (the test images, which
            # stand in for pulled ones, are fixtures); the other family reuses them.
            subprocess.run(
                ["docker", "image", "rm", "-f", *BUILT_IMAGES], capture_output=True, check=False
            )
            subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True, check=False)
        up_time, up = timed(lambda: stack.make("up", record="make up"))
        measured["up_cold_s" if cold else "up_s"] = up_time
        assert up.returncode == 0, up.stdout + up.stderr
        ui, dashboard = (
            published_port(v) for v in ("SPARK_MASTER_UI_HOST_PORT", "DASHBOARD_HOST_PORT")
        )
        assert f"Up ({stack.family} images). Spark master UI: http://localhost:{ui}" in up.stdout
        assert f"Dashboard: http://127.0.0.1:{dashboard}" in up.stdout
        run_walkthrough(stack, measured)
    finally:
        # Also after a failure: the next run must find the engine as this one did.
        clean = stack.make("clean", record="make clean")
        results = results_dir(stack.family)
        results.mkdir(parents=True, exist_ok=True)
        (results / "walkthrough.json").write_text(json.dumps(measured, indent=2) + "\n")
        for name, text in stack.transcripts.items():
            (results / f"{name.replace(' ', '-')}.txt").write_text(text)
        if clean.returncode == 0 and not project_leftovers():
            set_marker(False)
    assert clean.returncode == 0, clean.stderr
    assert project_leftovers() == []
    # No anonymous volume either (they carry no project label): none of the images' own
    # VOLUMEs was left without a mount.
    assert all_volumes() - volumes_before == set()


@contextlib.contextmanager
def phase(measured: dict[str, object], name: str) -> Iterator[None]:
    """How long a step of the walkthrough took (for CI's time budget), into ``measured``."""
    started = time.monotonic()
    try:
        yield
    finally:
        phases = measured.setdefault("phases_s", {})
        assert isinstance(phases, dict)
        phases[name] = round(time.monotonic() - started, 1)


def run_walkthrough(stack: Stack, measured: dict[str, object]) -> None:
    with phase(measured, "checks after make up"):
        check_the_running_stack(stack)
    with phase(measured, "backfill on the topic"):
        first = wait_for_backfill_and_live_events(stack, already=0)
    with phase(measured, "make submit, compared"):
        count_and_compare(stack, first, measured)
    with phase(measured, "Ctrl-C"):
        interrupt(stack)
    with phase(measured, "down, up, submit again"):
        resume_after_down_and_up(stack, first, measured)
    with phase(measured, "submit without Kafka"):
        submit_without_kafka(stack, measured)


def check_the_running_stack(stack: Stack) -> None:
    services = stack.services()
    for name in ("kafka", "spark-master", "spark-worker", "postgres", "dashboard"):
        assert services[name]["Health"] == "healthy", services[name]
    for name in ("volume-permissions", "spark-db-libs"):
        assert services[name]["State"] == "exited", services[name]
        assert services[name]["ExitCode"] == 0, services[name]
    # The dashboard answers, and says that the database has no data yet.
    with urllib.request.urlopen(dashboard_url("/"), timeout=30) as page:
        assert page.status == 200
    with urllib.request.urlopen(dashboard_url("/_dash-layout"), timeout=30) as layout:
        assert "No data yet: start the job (" in layout.read().decode()
    stack.transcripts["make ps"] = stack.make("ps").stdout

    # Nothing listens on a host address other than loopback.
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    proxies = [line.split()[3] for line in listening.splitlines() if "docker-proxy" in line]
    assert proxies and all(a.startswith("127.0.0.1:") for a in proxies), proxies

    # The producer and the dashboard run as non-root users on read-only root filesystems.
    for name, user in (("producer", "10001"), ("dashboard", "10002")):
        assert stack.inspect(name)["HostConfig"]["ReadonlyRootfs"] is True, name
        uid = stack.compose("exec", "-T", name, "id", "-u")
        assert uid.returncode == 0 and uid.stdout.strip() == user, uid

    # Spark's daemon scripts were not told to rsync from a "SPARK_MASTER" directory.
    assert "rsync" not in stack.logs("spark-master")


def count_and_compare(stack: Stack, first: int, measured: dict[str, object]) -> None:
    producer_log = stack.logs("producer")
    assert stack.inspect("producer")["State"]["ExitCode"] == 0, producer_log[-2000:]
    assert f"{first:,} acknowledged, 0 failed" in producer_log
    events = read_events(first)
    assert sum(e["timestamp"] >= "2026" for e in events) > 0

    with ContainerMemorySampler() as memory:
        submit = stack.make("submit", "ARGS=--trigger available-now", record="make submit")
    assert submit.returncode == 0, submit.stdout[-5000:] + submit.stderr[-3000:]
    assert_table_matches(submit.stdout, expected_monthly(events))
    assert records_read(submit.stdout) == first
    assert csv_table(stack) == expected_monthly(events)
    # The job wrote PostgreSQL, as its writer role; the dashboard shows those numbers.
    assert "Database: postgresql+pg8000://pipeline:***@postgres:5432/logins" in submit.stdout
    assert database_monthly() == expected_monthly(events)
    assert dashboard_table() == expected_dashboard_rows(expected_monthly(events))
    assert_the_dashboard_role_reads_and_cannot_write(expected_monthly(events))
    # The detector ran beside the counts (one batch: nothing was late): its ledger holds
    # exactly the windows that the failed logins read back cross, each published.
    assert "Created the alerts topic 'login-alerts'." in submit.stdout
    expected = expected_alerts(as_failures(events), AlertRule())
    assert database_alerts() == [(*w, True) for w in expected]
    peak, per_container = memory.peak
    measured["submit_peak_memory_bytes"] = peak
    measured["submit_peak_memory_by_container"] = per_container
    measured["memory_samples"] = len(memory.samples)


def interrupt(stack: Stack) -> None:
    """Ctrl-C on a live `make submit` stops the driver inside the container, both ways. The
    terminal's way (Compose's `exec -t`) is the same for both families: the second family
    runs only the way scripts/docker-submit.sh forwards the signal itself."""
    ways = [("no terminal", interrupt_live_submit_without_terminal)]
    if stack.family == FAMILIES[0]:
        ways.append(("terminal", interrupt_live_submit_in_a_terminal))
    for name, interrupt_live_submit in ways:
        output = interrupt_live_submit(stack)
        assert "Stopped after batch 0. Progress is in the checkpoint" in output, (name, output)
        assert "Traceback" not in output and "Py4J" not in output, (name, output)
        assert driver_processes(stack) == "", name


def resume_after_down_and_up(stack: Stack, first: int, measured: dict[str, object]) -> None:
    down = stack.make("down", record="make down")
    assert down.returncode == 0, down.stderr
    measured["up_cached_s"], up = timed(lambda: stack.make("up"))
    assert up.returncode == 0, up.stdout + up.stderr
    second = wait_for_backfill_and_live_events(stack, already=first)
    events = read_events(second)
    resumed = stack.make("submit", "ARGS=--trigger available-now", record="make submit again")
    assert resumed.returncode == 0, resumed.stdout[-5000:]
    assert records_read(resumed.stdout) == second - first  # only the new records
    assert_table_matches(resumed.stdout, expected_monthly(events))
    assert csv_table(stack) == expected_monthly(events)
    # The database kept the first run's rows across down/up and has the new ones; the
    # running dashboard shows them on its next page load.
    assert database_monthly() == expected_monthly(events)
    assert dashboard_table() == expected_dashboard_rows(expected_monthly(events))


def submit_without_kafka(stack: Stack, measured: dict[str, object]) -> None:
    """With Kafka stopped (its name no longer resolves), the job says so and exits 3."""
    assert stack.compose("stop", "kafka").returncode == 0
    refused, result = timed(
        lambda: stack.make(
            "submit", "ARGS=--trigger available-now --connect-timeout 5", timeout=180
        )
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "error: no address of Kafka at kafka:29092 resolves" in output, output[-3000:]
    assert "Traceback" not in output
    assert "submit] Error 3" in output
    measured["submit_without_kafka_s"] = refused
