"""Driving the Docker walkthrough from tests: the real Makefile targets on a real engine.

The compose files keep the real image names; tests hand them the local stand-ins from
:mod:`tests.images.build` through the same ``.env`` variables a user would set, choose the
image family with ``STACK`` as a user would, and use the Compose CLI that ``make tools``
builds. A port the stack publishes that something else holds on this machine is moved
through its ``.env`` variable (:func:`movable_ports`), so a broker from ``make demo`` does
not fail the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from contract.tables import ALERTS_TABLE
from services.settings import CACHE_DIR, PROJECT_ROOT
from tests.images.build import REPOSITORY as TEST_REPOSITORY
from tests.support.compose import FAMILY_FILES, TOPOLOGIES, stack_files
from tests.support.conditions import unavailable

PROJECT = "login-pipeline"
COMPOSE_BINARY = CACHE_DIR / "bin" / "docker-compose"
PRODUCER_IMAGE = "login-pipeline/producer:local"
# The images the compose files build (`make up`), as opposed to the ones they pull.
BUILT_IMAGES = (
    PRODUCER_IMAGE,
    "login-pipeline/dashboard:local",
    "login-pipeline/spark-db-libs:local",
)
TEST_RUN_MARKER = "login-pipeline-test-run"  # a volume outside the project: not its data
# The .env variables of the ports the stack publishes on 127.0.0.1.
PORT_VARIABLES = (
    "KAFKA_HOST_PORT",
    "POSTGRES_HOST_PORT",
    "DASHBOARD_HOST_PORT",
    "SPARK_MASTER_UI_HOST_PORT",
    "SPARK_JOB_UI_HOST_PORT",
    "SPARK_WORKER_UI_HOST_PORTS",
    "KAFKA_2_HOST_PORT",  # the cluster topology's other Kafka nodes
    "KAFKA_3_HOST_PORT",
)


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=30)
    return probe.returncode == 0


def _project_listing(listing: tuple[str, ...], field: str) -> list[str]:
    """``docker LISTING`` of what carries this project's Compose label, one field of each."""
    return subprocess.run(
        [
            "docker", *listing,
            "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--format", field,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()  # fmt: skip


def project_leftovers() -> list[str]:
    """Containers and volumes of a ``login-pipeline`` stack already on this engine."""
    containers = _project_listing(("ps", "-a"), "{{.Names}}")
    return containers + _project_listing(("volume", "ls"), "{{.Name}}")


def leftover_images() -> list[str]:
    """The images the containers of a ``login-pipeline`` stack on this engine run."""
    return _project_listing(("ps", "-a"), "{{.Image}}")


def all_volumes() -> set[str]:
    """Every volume on the engine (anonymous ones too, which carry no project label)."""
    listing = ["docker", "volume", "ls", "--format", "{{.Name}}"]
    return set(subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split())


# `make test` sets this for the Docker engine's tests, which run beside tests that start
# Spark drivers (their UIs from 4040 up), brokers and databases: a default port free when
# the stack is planned may be taken a minute later, so there every port moves.
MOVE_ALL_PORTS = "PIPELINE_TEST_MOVE_PORTS"


def movable_ports() -> dict[str, str]:
    """Port variables to set for this run: each port (or whole range) of .env that something
    on this machine holds, moved to free ports; empty when all are free (as in CI run
    alone). With ``PIPELINE_TEST_MOVE_PORTS=all`` in the environment, every one moves."""
    from scripts.check_ports import is_free
    from services.settings import read_env_file

    env = read_env_file()
    move_all = os.environ.get(MOVE_ALL_PORTS) == "all"
    moved = {}
    for variable in PORT_VARIABLES:
        first, _, last = env[variable].partition("-")
        ports = range(int(first), int(last or first) + 1)
        if move_all or not any(is_free("127.0.0.1", port) for port in ports):
            start = free_range(len(ports), is_free)
            moved[variable] = f"{start}-{start + len(ports) - 1}" if last else str(start)
    return moved


def free_range(length: int, is_free: Callable[[str, int], bool]) -> int:
    """The first of ``length`` consecutive ports free on 127.0.0.1 (a range such as the
    workers' UIs stays a range, one port per worker)."""
    from tests.support.kafka import free_port

    for _ in range(50):
        start = free_port()
        if start + length <= 65536 and all(
            is_free("127.0.0.1", port) for port in range(start, start + length)
        ):
            return start
    raise RuntimeError(f"no {length} consecutive free ports found on 127.0.0.1")


def marker_exists() -> bool:
    probe = ["docker", "volume", "inspect", TEST_RUN_MARKER]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def set_marker(present: bool) -> None:
    """Create or remove the volume that says "the walkthrough test owns the stack now"."""
    command = ["create", TEST_RUN_MARKER] if present else ["rm", "-f", TEST_RUN_MARKER]
    subprocess.run(["docker", "volume", *command], capture_output=True, check=True)


def left_by_the_test(images: list[str], marker: bool) -> bool:
    """Whether a stack on the engine is one an interrupted walkthrough test left behind.

    Only then may the test remove it: a user's stack is data. A user's containers run the
    pulled Bitnami images; the test's run its stand-ins (``login-pipeline-test/...``) beside
    the images the compose files build. A stack with no containers left (volumes only) tells
    nothing by itself; the marker volume, held from ``make up`` until ``make clean`` succeeds,
    says whether the test made it. A killed test (a machine restart) cannot clean up, and its
    containers come back with the engine, so the next run must recognise them.
    """
    if not images:
        return marker
    stand_ins = [image for image in images if image.startswith(f"{TEST_REPOSITORY}/")]
    built = [image for image in images if image in BUILT_IMAGES]
    return bool(stand_ins) and len(stand_ins) + len(built) == len(images)


def refuse_a_users_stack() -> None:
    """Remove a stack an interrupted run of a Docker test left (the volumes of every family
    and topology); refuse to touch anyone else's."""
    leftovers = project_leftovers()
    if leftovers and left_by_the_test(leftover_images(), marker_exists()):
        print(f"removing what an interrupted run of this test left: {', '.join(leftovers)}")
        for family in FAMILY_FILES:
            for topology in TOPOLOGIES:
                clean = Stack({}, family, topology).make("clean")
                assert clean.returncode == 0, clean.stdout + clean.stderr
        leftovers = project_leftovers()
    if leftovers:
        unavailable(
            f"a login-pipeline stack exists on this engine ({', '.join(leftovers)}); this "
            "test would replace it. `make clean` first, if its data may go."
        )


def stand_in_images() -> dict[str, str]:
    """The stand-ins of both families, built once (or found by their content hash), on an
    engine without a user's stack. Skips (fails under CI) where no engine answers."""
    if not engine_answers():
        unavailable(
            "no Docker engine answers `docker info` (tests/images/engine.sh installs and "
            "starts one as root on Debian; `make test-docker` runs it)"
        )
    refuse_a_users_stack()
    from tests.images.build import BuildError, build_all

    try:
        return build_all()
    except BuildError as exc:
        unavailable(f"the test images cannot be built here: {exc}")
        raise  # unreachable: unavailable() skips or fails


@dataclass
class Stack:
    """``make`` targets of the Docker walkthrough with the test images and our Compose CLI,
    on one image family (``STACK``) and topology (``TOPOLOGY``)."""

    images: dict[str, str]
    family: str = "bitnami"
    topology: str = "single"
    moved_ports: dict[str, str] = field(default_factory=dict)  # also in os.environ meanwhile
    transcripts: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.images,
            "STACK": self.family,
            "TOPOLOGY": self.topology,
            "COMPOSE": str(COMPOSE_BINARY),
        }

    def run(self, command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        """In the project folder, stdin not a terminal (as in CI), output captured."""
        return subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def make(
        self, target: str, *args: str, timeout: float = 600, record: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``make TARGET [ARGS=...]`` as a user types it."""
        result = self.run(["make", "--no-print-directory", target, *args], timeout)
        if record:
            self.transcripts[record] = result.stdout + result.stderr
        return result

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        files = [arg for name in stack_files(self.family, self.topology) for arg in ("-f", name)]
        return self.run([str(COMPOSE_BINARY), *files, *args], timeout)

    def services(self) -> dict[str, dict]:
        """``docker compose ps -a`` as ``{service: {State, Health, ExitCode, ...}}``."""
        result = self.compose("ps", "-a", "--format", "json")
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def container(self, service: str, replica: int = 1) -> str:
        return f"{PROJECT}-{service}-{replica}"

    def inspect(self, service: str, replica: int = 1) -> dict:
        result = subprocess.run(
            ["docker", "inspect", self.container(service, replica)],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(result.stdout)[0]

    def logs(self, service: str) -> str:
        result = subprocess.run(
            ["docker", "logs", self.container(service)], capture_output=True, text=True, check=False
        )
        return result.stdout + result.stderr

    def read_file(self, service: str, path: str) -> str:
        result = self.compose("exec", "-T", service, "cat", path)
        assert result.returncode == 0, result.stderr
        return result.stdout


def timed(
    action: Callable[[], subprocess.CompletedProcess[str]],
) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def last_monthly_table(output: str) -> dict[str, tuple[int, int, int]]:
    """The last table the job printed, as ``month -> (logins, successful, failed)``;
    the ``total`` row is kept under ``"total"``."""
    tables = re.findall(
        r"\|month +\|logins\|successful\|failed\|\n\+[-+]+\+\n((?:\|.*\|\n)+)", output
    )
    assert tables, f"no monthly table in the output:\n{output[-3000:]}"
    rows = {}
    for line in tables[-1].splitlines():
        month, *numbers = (cell.strip() for cell in line.strip("|").split("|"))
        rows[month] = tuple(int(n) for n in numbers)
    return rows


def records_read(output: str) -> int:
    """The records the job's batches read, summed from its per-batch lines."""
    return sum(
        int(n.replace(",", "")) for n in re.findall(r"\] batch \d+: ([\d,]+) records read", output)
    )


# The stack's PostgreSQL and dashboard, as a user on this machine reaches them: through the
# ports published on 127.0.0.1 (.env), with the passwords `make up` wrote to postgres/*.env.
DB_NAME = "logins"


def published_port(variable: str) -> int:
    from services.settings import read_env_file

    return int(read_env_file()[variable])


def password(env_file: str) -> str:
    """The one password in ``postgres/<env_file>.env``."""
    from dotenv import dotenv_values

    (value,) = dotenv_values(PROJECT_ROOT / "postgres" / f"{env_file}.env").values()
    assert value, env_file
    return value


def connect(user: str, env_file: str):  # -> pg8000.native.Connection
    import pg8000.native

    return pg8000.native.Connection(
        user,
        password=password(env_file),
        host="127.0.0.1",
        port=published_port("POSTGRES_HOST_PORT"),
        database=DB_NAME,
        timeout=30,
    )


def database_monthly(user: str = "pipeline", env_file: str = "job") -> dict[str, tuple[int, ...]]:
    """The job's monthly table in PostgreSQL, as ``month -> (logins, successful, failed)``."""
    connection = connect(user, env_file)
    try:
        rows = connection.run(
            "SELECT period, logins, successful, failed FROM login_counts "
            "WHERE period_kind = 'month' ORDER BY period"
        )
    finally:
        connection.close()
    return {period: (logins, ok, failed) for period, logins, ok, failed in rows}


def database_alerts() -> list[tuple]:
    """The detector's ledger in PostgreSQL, as sorted ``(address, window start, failed,
    accounts, published)``, the shape of :func:`tests.support.truth.expected_alerts` plus
    whether the alert reached the topic."""
    connection = connect("pipeline", "job")
    try:
        rows = connection.run(
            f"SELECT address, window_start, failed, accounts, published_at FROM {ALERTS_TABLE}"
        )
    finally:
        connection.close()
    return sorted((a, start, failed, accounts, published is not None)
                  for a, start, failed, accounts, published in rows)  # fmt: skip


def dashboard_url(path: str = "/") -> str:
    return f"http://127.0.0.1:{published_port('DASHBOARD_HOST_PORT')}{path}"


def dashboard_table() -> list[list[str]]:
    """The rows of the dashboard's counts table (header first), from the layout that Dash
    serves a browser on every page load (``/_dash-layout``: the page's components as JSON)."""
    import urllib.request

    with urllib.request.urlopen(dashboard_url("/_dash-layout"), timeout=30) as response:
        layout = json.load(response)

    def find(node: object, wanted: str) -> dict | None:
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == wanted:
                return node
            children = node.get("props", {}).get("children")
            return find(children, wanted) if children is not None else None
        if isinstance(node, list):
            for child in node:
                found = find(child, wanted)
                if found:
                    return found
        return None

    def texts(node: object) -> list[str]:
        if isinstance(node, (str, int, float)):
            return [str(node)]
        if isinstance(node, list):
            return [t for child in node for t in texts(child)]
        if isinstance(node, dict):
            return texts(node.get("props", {}).get("children", []))
        return []

    table = find(layout, "counts-table")
    assert table is not None, f"no counts table on the dashboard: {json.dumps(layout)[:2000]}"
    rows = []
    for section in table["props"]["children"]:  # Thead, Tbody
        body = section["props"]["children"]
        for row in body if isinstance(body, list) else [body]:
            rows.append(texts(row))
    return rows


def expected_dashboard_rows(expected: dict[str, tuple[int, int, int]]) -> list[list[str]]:
    """The counts table as the dashboard must show it: one row per month and the total,
    with thousands separators and the failure rate in percent, two decimals."""

    def row(label: str, logins: int, successful: int, failed: int, rate: float) -> list[str]:
        return [label, f"{logins:,}", f"{successful:,}", f"{failed:,}", f"{rate:.2f} %"]

    logins, successful, failed = (sum(c[i] for c in expected.values()) for i in range(3))
    return [
        ["month", "logins", "successful", "failed", "failure rate"],
        *(row(m, *c, 100 * (c[2] / c[0])) for m, c in sorted(expected.items())),
        row("total", logins, successful, failed, 100 * failed / logins),
    ]
