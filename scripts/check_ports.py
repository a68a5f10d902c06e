"""`make up`: every port the Docker stack publishes must be free before anything starts.

    docker compose -f A.yml -f B.yml config --format json \
      | python3 scripts/check_ports.py -f A.yml -f B.yml

Compose's model (on standard input) lists the published ports; the compose files name the
.env variable behind each. A port that a container of this Compose project holds is fine
(`make up` on a running stack replaces its containers). Any other holder stops `make up`
before Compose starts anything, with one sentence per port that names the holder where this
machine tells (the local broker of `make demo`, another container, a process) and the
variable that moves the port; otherwise the daemon would fail on the first busy port and
leave the services it had already started running. Standard library only: `make up` needs
no .venv.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# `- "127.0.0.1:${VARIABLE}:target"` in a compose file.
PUBLISHED_BY_VARIABLE = re.compile(r"127\.0\.0\.1:\$\{(?P<variable>\w+)\}:(?P<target>\d+)")


@dataclass(frozen=True)
class Published:
    """One ``ports:`` entry: a host port or a range of them, for one container port."""

    service: str
    host_ip: str
    ports: tuple[int, ...]
    target: int


def published_ports(model: dict) -> list[Published]:
    found = []
    for name, service in sorted(model.get("services", {}).items()):
        for port in service.get("ports", []):
            published = str(port.get("published") or port["target"])
            first, _, last = published.partition("-")
            ports = tuple(range(int(first), int(last or first) + 1))
            found.append(Published(name, port.get("host_ip") or "0.0.0.0", ports, port["target"]))
    return found


def port_variables(compose_texts: list[str]) -> dict[int, str]:
    """Container port -> the .env variable that publishes it (they are unique here)."""
    return {
        int(match["target"]): match["variable"]
        for text in compose_texts
        for match in PUBLISHED_BY_VARIABLE.finditer(text)
    }


def is_free(host: str, port: int) -> bool:
    """True unless something listens there (SO_REUSEADDR, as servers bind: connections in
    TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def run(command: list[str]) -> str:
    """A command's standard output, or "" if it is missing or fails."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout if result.returncode == 0 else ""


def container_ports(ports_column: str) -> set[int]:
    """Host ports in ``docker ps``' Ports column (``127.0.0.1:9092->9092/tcp, ...``)."""
    return {int(port) for port in re.findall(r":(\d+)->", ports_column)}


def containers_by_port(project: str) -> tuple[set[int], dict[int, str]]:
    """Host ports held by this project's containers, and every other container's by port."""
    own: set[int] = set()
    others: dict[int, str] = {}
    columns = '{{.Names}}\t{{.Label "com.docker.compose.project"}}\t{{.Ports}}'
    listing = run(["docker", "ps", "--format", columns])
    for line in listing.splitlines():
        name, owner, ports = [*line.split("\t"), "", ""][:3]
        for port in container_ports(ports):
            if owner == project:
                own.add(port)
            else:
                others[port] = name
    return own, others


def listening_process(port: int) -> tuple[str, int] | None:
    """(command, pid) of the process listening on ``port``, if this machine tells us."""
    listing = run(["ss", "-Hltnp", f"sport = :{port}"])
    match = re.search(r'users:\(\("(?P<command>[^"]+)",pid=(?P<pid>\d+)', listing)
    if match:
        return match["command"], int(match["pid"])
    listing = run(["lsof", "-nP", f"-iTCP:{port}", "-sTCP:LISTEN", "-Fpc"])  # macOS
    pid = re.search(r"^p(\d+)$", listing, re.M)
    command = re.search(r"^c(.+)$", listing, re.M)
    if pid and command:
        return command[1], int(pid[1])
    return None


def local_broker_pid() -> int | None:
    """The pid of the broker `make demo` / `make local-up` started (services/kafka.py)."""
    local_dir = Path(os.environ.get("PIPELINE_LOCAL_DIR", ROOT / ".local"))
    try:
        return int((local_dir / "kafka" / "broker.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def holder(port: int, containers: dict[int, str]) -> tuple[str, str | None]:
    """Who holds ``port``, and how to free it (None: no advice beyond moving the port)."""
    if port in containers:
        name = containers[port]
        return f"the Docker container {name}", f"`docker stop {name}`"
    process = listening_process(port)
    if process is None:
        return "another process (this machine does not say which)", None
    command, pid = process
    if pid == local_broker_pid():
        name = f"the local broker of `make demo` or `make local-up` (pid {pid})"
        return name, "`make local-down`"
    return f"{command} (pid {pid})", None


def sentence(
    published: Published, variable: str | None, holders: list[tuple[str, str | None]]
) -> str:
    """One sentence: which port, who holds it, what frees it."""
    ports = published.ports
    if len(ports) == 1:
        what, taken = f"port {ports[0]} ({published.service})", "is"
    else:
        what, taken = f"ports {ports[0]}-{ports[-1]} ({published.service})", "are all"
    who = sorted({name for name, _ in holders})
    remedies = sorted({advice for _, advice in holders if advice})
    options = [f"stop it with {' or '.join(remedies)}"] if remedies else []
    if variable:
        options.append(f"set {variable} in .env to a free {'port' if len(ports) == 1 else 'range'}")
    remedy = f"; {', or '.join(options)}" if options else ""
    return f"error: {what} {taken} taken by {' and '.join(who)}{remedy}."


def problems(model: dict, variables: dict[int, str]) -> list[str]:
    own, containers = containers_by_port(model.get("name", ""))
    found = []
    for published in published_ports(model):
        taken = [p for p in published.ports if p not in own and not is_free(published.host_ip, p)]
        if not taken or len(taken) < len(published.ports):  # a range needs one free port
            continue
        holders = [holder(port, containers) for port in taken]
        found.append(sentence(published, variables.get(published.target), holders))
    return found


def compose_files(argv: list[str]) -> list[Path]:
    """The files after each ``-f`` (as the Makefile passes them)."""
    return [ROOT / argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-f"]


def main(argv: list[str]) -> int:
    model = json.load(sys.stdin)
    variables = port_variables([path.read_text() for path in compose_files(argv)])
    found = problems(model, variables)
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print("make up started nothing.", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
