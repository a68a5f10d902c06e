"""A real Apache Kafka broker (KRaft, single node) run from its Maven Central jars.

This is the embedded default for machines without Docker: the same Kafka version as the
Bitnami image, started as a background Java process with its data in ``.local/kafka``.
``start`` returns only once the broker answers a metadata request; ``stop`` shuts it down
cleanly by PID. Tests use the same class on other ports and folders, and add SASL and TLS
listeners through its hooks (``tests/support/secure_kafka.py``): nothing here needs them.

    python -m services.kafka up | down | status | logs
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from services.jars import kafka_modules, resolve_classpath
from services.java import JavaError, require_java
from services.settings import LOCAL_DIR, PROJECT_ROOT, load_settings
from services.waiting import Waiting

READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 45.0


class LocalKafkaError(RuntimeError):
    """The local broker could not be started or stopped; the message says why and what to do."""


def kafka_classpath(version: str | None = None) -> list[Path]:
    """The broker's and tools' jars of Kafka ``version`` (default: the local path's, .env)."""
    settings = load_settings()
    return resolve_classpath(
        kafka_modules(version or settings.kafka_version, settings.scala_version)
    )


@contextlib.contextmanager
def _silenced(logger_name: str) -> Iterator[None]:
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def broker_answers(bootstrap_servers: str, timeout_s: float = 2.0) -> bool:
    """True if a broker at ``bootstrap_servers`` answers a metadata request."""
    from kafka import KafkaAdminClient

    with _silenced("kafka"):
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap_servers.split(","),
                bootstrap_timeout_ms=int(timeout_s * 1000),
                request_timeout_ms=int(timeout_s * 1000),
            )
        except Exception:  # any failure means "not answering yet"
            return False
        try:
            return bool(admin.describe_cluster().get("brokers"))
        except Exception:
            return False
        finally:
            admin.close()


def free_port() -> int:
    """A port nothing listens on now (the OS's pick), for brokers of tests and benchmarks."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """True unless another process listens on ``host:port``.

    SO_REUSEADDR, as the broker's own server socket uses, so connections left in
    TIME_WAIT by a broker that just stopped do not count as "in use".
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((socket.gethostbyname(host), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def process_command(pid: int) -> str | None:
    """The command line of ``pid``, or None if no such process (works on Linux and macOS)."""
    result = subprocess.run(
        ["ps", "-ww", "-o", "args=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or None


@dataclass
class LocalKafka:
    """One KRaft broker+controller in ``home``, listening on ``host:port`` (PLAINTEXT).

    Everything ``make local-up``, ``make demo`` and the benchmarks need. A subclass can add
    listeners, the files they read and the users they know by overriding the hooks
    :meth:`client_listeners`, :meth:`listener_settings`, :meth:`prepare_home`,
    :meth:`storage_format_options` and :meth:`run_tool`; the tests' SASL and TLS broker
    (``tests/support/secure_kafka.py``) does.
    """

    home: Path
    host: str = "localhost"
    port: int = 9092
    controller_port: int = 9093
    heap: str = os.environ.get("LOCAL_KAFKA_HEAP", "512m")
    # Another Kafka release's jars (e.g. the official images' newer one); default: .env's.
    kafka_version: str | None = None
    extra_properties: Mapping[str, str] = field(default_factory=dict)
    # A complete configuration to run instead of the one below (e.g. the compose file's,
    # see properties_from_bitnami_env); log.dirs is always this broker's data_dir.
    custom_properties: Mapping[str, str] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.home / "server.properties"

    # -- hooks for subclasses ----------------------------------------------------------------

    def client_listeners(self) -> dict[str, int]:
        """Listener name -> port for clients; each name is also its security protocol.

        Brokers talk to each other on PLAINTEXT, so a subclass adds to this, keeping it.
        """
        return {"PLAINTEXT": self.port}

    def listener_settings(self) -> dict[str, str]:
        """Settings the listeners need beyond their addresses (PLAINTEXT needs none)."""
        return {}

    def prepare_home(self) -> None:
        """Write the files the settings refer to; called by ``start`` before it writes them."""

    def storage_format_options(self) -> list[str]:
        """More options for ``kafka-storage format`` (a subclass's SCRAM users, say)."""
        return []

    def run_tool(self, command: list[str]) -> subprocess.CompletedProcess[str]:
        """Run one of Kafka's Java tools to completion, its output captured.

        A subclass whose options hold secrets overrides this to keep them off the command
        line, which every user can read in ``/proc/<pid>/cmdline``.
        """
        return subprocess.run(command, capture_output=True, text=True, check=False)

    # -- settings ----------------------------------------------------------------------------

    def properties(self) -> dict[str, str]:
        """Broker settings for one node that is also its own controller."""
        if self.custom_properties is not None:
            return {**self.custom_properties, "log.dirs": str(self.data_dir)}
        clients = self.client_listeners()
        advertised = [f"{name}://{self.host}:{port}" for name, port in clients.items()]
        listeners = [*advertised, f"CONTROLLER://{self.host}:{self.controller_port}"]
        protocols = [*(f"{name}:{name}" for name in clients), "CONTROLLER:PLAINTEXT"]
        props = self.listener_settings()
        props.update(
            {
                "process.roles": "broker,controller",
                "node.id": "1",
                "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
                "controller.listener.names": "CONTROLLER",
                "inter.broker.listener.name": "PLAINTEXT",
                "listeners": ",".join(listeners),
                "advertised.listeners": ",".join(advertised),
                "listener.security.protocol.map": ",".join(protocols),
                "log.dirs": str(self.data_dir),
                "num.partitions": "3",
                # One node: internal topics cannot have more than one replica.
                "offsets.topic.replication.factor": "1",
                "transaction.state.log.replication.factor": "1",
                "transaction.state.log.min.isr": "1",
                "share.coordinator.state.topic.replication.factor": "1",
                "share.coordinator.state.topic.min.isr": "1",
                "group.initial.rebalance.delay.ms": "0",
                # After a restart the controller rejects the broker's new registration until
                # the old session expires (9 s by default); a short session keeps restarts quick.
                "broker.heartbeat.interval.ms": "1000",
                "broker.session.timeout.ms": "3000",
                # A typo in a topic name should fail loudly, not create an empty topic.
                "auto.create.topics.enable": "false",
            }
        )
        props.update(self.extra_properties)
        return props

    def listener_ports(self) -> list[int]:
        """Every port the broker will listen on (from ``listeners``)."""
        listeners = self.properties()["listeners"].split(",")
        return [int(listener.rsplit(":", 1)[1]) for listener in listeners]

    # -- lifecycle ---------------------------------------------------------------------------

    def pid(self) -> int | None:
        """PID of this broker if it is running (checked against the process's command line)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        command = process_command(pid)
        if command and "kafka.Kafka" in command and str(self.properties_file) in command:
            return pid
        return None

    def _java_command(self, java: Path, main_class: str, *args: str) -> list[str]:
        classpath = ":".join(str(p) for p in kafka_classpath(self.kafka_version))
        return [
            str(java),
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=yyyy-MM-dd HH:mm:ss,SSS",
            "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients=warn",
            "-cp",
            classpath,
            main_class,
            *args,
        ]

    def _format_storage(self, java: Path) -> None:
        """Format the KRaft metadata log once (``kafka-storage format --standalone``)."""
        if (self.data_dir / "meta.properties").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if "controller.quorum.voters" in self.properties():
            # Static voters, formatted the way Bitnami's Kafka 4.0 image does it.
            quorum = ["--feature", "kraft.version=1", "--no-initial-controllers"]
        else:
            quorum = ["--standalone"]
        command = self._java_command(
            java,
            "kafka.tools.StorageTool",
            "format",
            # "=" form: a random id may start with "-", which would look like an option.
            f"--cluster-id={_new_cluster_id()}",
            "--config",
            str(self.properties_file),
            "--ignore-formatted",
            *quorum,
            *self.storage_format_options(),
        )
        result = self.run_tool(command)
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting {self.data_dir} failed:\n"
                f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Start in the background and return once the broker answers; no-op if running."""
        if self.pid() is not None:
            if broker_answers(self.bootstrap_servers):
                return
            self.wait_ready(timeout_s)
            return
        for port in self.listener_ports():
            if not port_is_free(self.host, port):
                raise LocalKafkaError(
                    f"port {port} on {self.host} is already in use by another process "
                    "(a Kafka started by `make up`, or another service?). Stop it, or run the "
                    "local broker elsewhere by setting KAFKA_BOOTSTRAP_SERVERS=localhost:<port>."
                )
        try:
            java = require_java()
        except JavaError as exc:
            raise LocalKafkaError(str(exc)) from None
        self.home.mkdir(parents=True, exist_ok=True)
        self.prepare_home()
        # Readable by this user only: a subclass's listener settings may hold passwords.
        self.properties_file.touch(mode=0o600, exist_ok=True)
        self.properties_file.write_text(
            "# Written by services/kafka.py; edit LocalKafka.properties() instead.\n"
            + "".join(
                f"{key}={_properties_escape(value)}\n" for key, value in self.properties().items()
            )
        )
        self._format_storage(java)
        command = self._java_command(java, "kafka.Kafka", str(self.properties_file))
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.home,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        self.wait_ready(timeout_s, process)

    def wait_ready(self, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
        """Poll with a metadata request until the broker answers or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise LocalKafkaError(
                    f"the broker exited with status {process.returncode} during start-up. "
                    f"Last lines of {self.log_file}:\n{self.tail_log()}"
                )
            if broker_answers(self.bootstrap_servers, timeout_s=1.0):
                return
            time.sleep(0.2)  # poll interval, bounded by the deadline above
        raise LocalKafkaError(
            f"the broker did not answer on {self.bootstrap_servers} within {timeout_s:.0f}s. "
            f"Last lines of {self.log_file}:\n{self.tail_log()}"
        )

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Clean shutdown by SIGTERM, SIGKILL after ``timeout_s``; False if it was not running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_for_exit(pid, timeout_s):
            os.kill(pid, signal.SIGKILL)
            _wait_for_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """Crash the broker (SIGKILL), as a power cut would; for fault-injection tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _wait_for_exit(pid, 10)

    def tail_log(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log yet)"


def _properties_escape(value: str) -> str:
    """``value`` written so that java.util.Properties reads back exactly ``value``.

    Properties files treat a backslash as an escape and a line break as the end of the
    value, so a value holding either (a JAAS setting with an escaped quote, say) would
    otherwise reach Kafka changed.
    """
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding, as Kafka makes."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def _wait_for_exit(pid: int, timeout_s: float) -> bool:
    """True once ``pid`` has exited, reaping it when it is our child.

    An exited child stays in the process table (``<defunct>``) until it is reaped. A
    JVM's main thread also shows ``<defunct>`` as soon as it ends, while the JVM's other
    threads are still shutting down; it cannot be reaped until they have, so a child is
    only done once ``waitpid`` returns it. Someone else's process is done once defunct.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        command = process_command(pid)
        if command is None:
            return True
        if "<defunct>" in command:
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return True
            except ChildProcessError:
                return True  # not our child: its own parent reaps it
        time.sleep(0.1)  # poll interval, bounded by the deadline above
    return False


def shown(path: Path) -> Path:
    """``path`` relative to the project when inside it, as users would type it."""
    return path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path


def default_broker() -> LocalKafka:
    """The broker ``make local-up`` runs, on the address ``.env`` gives clients."""
    settings = load_settings()
    first = settings.bootstrap_servers.split(",")[0]
    host, _, port = first.rpartition(":")
    return LocalKafka(
        home=LOCAL_DIR / "kafka",
        host=host or "localhost",
        port=int(port),
        controller_port=int(port) + 1,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.kafka",
        description="Run the local Apache Kafka broker (KRaft, single node) without Docker.",
    )
    parser.add_argument("action", choices=("up", "down", "status", "logs"))
    args = parser.parse_args(argv)
    broker = default_broker()
    try:
        if args.action == "up":
            already = broker.pid() is not None
            started = time.monotonic()
            if already:
                broker.start()
            else:
                what = "Kafka to answer (a first run downloads its jars from Maven Central)"
                with Waiting(what, closing=False):
                    broker.start()
            if already:
                print(
                    f"Kafka is already running on {broker.bootstrap_servers} (pid {broker.pid()})."
                )
            else:
                print(
                    f"Kafka {load_settings().kafka_version} is up on {broker.bootstrap_servers} "
                    f"(pid {broker.pid()}, ready in {time.monotonic() - started:.1f}s, "
                    f"data in {shown(broker.home)})."
                )
        elif args.action == "down":
            if broker.stop():
                print(f"Kafka on {broker.bootstrap_servers} stopped.")
            else:
                print("Kafka was not running.")
        elif args.action == "status":
            pid = broker.pid()
            if pid is None:
                print("Kafka is not running (start it with `make local-up`).")
                return 1
            state = "answering" if broker_answers(broker.bootstrap_servers) else "NOT answering"
            print(f"Kafka is running on {broker.bootstrap_servers} (pid {pid}), {state}.")
        else:
            print(broker.tail_log(100))
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
