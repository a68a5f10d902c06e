"""Faults injected for real into what a running job depends on: a SQLite database locked by
another process, a folder remounted read-only, a process paused; and what a run exposes
(listening sockets, command lines) read from the operating system."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.conditions import unavailable

# Another process takes SQLite's write lock (BEGIN EXCLUSIVE), says so, and holds it.
_LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
print("released", flush=True)
"""


class SqliteLock:
    """A separate Python process holding an exclusive transaction on ``path`` for
    ``seconds``, as a backup tool or a careless query would."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LOCKER, str(path), str(seconds)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # blocks until the lock is held (or it failed)
        if line.strip() != "locked":
            self.process.kill()
            raise AssertionError(f"could not lock {path}: {line}{self.process.stderr.read()}")
        self.locked_at = time.monotonic()

    def wait(self, timeout_s: float) -> float:
        """Wait for the lock's release; how long it was held."""
        self.process.wait(timeout=timeout_s)
        return time.monotonic() - self.locked_at

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class ReadOnlyFolder:
    """``folder`` bind-mounted onto itself, so it can be made read-only and writable again
    while processes use it (a file system remounted read-only, as after a disk error).

    A mount cannot turn read-only while a file on it is open for writing (EBUSY), so
    :meth:`make_read_only` retries until nothing holds one, up to ``timeout_s``. Needs root
    (or CAP_SYS_ADMIN): elsewhere the test is skipped, and under CI=true it fails.
    """

    def __init__(self, folder: Path) -> None:
        if os.geteuid() != 0:
            unavailable("remounting a folder read-only needs root")
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._mount("--bind", str(folder), str(folder))

    @staticmethod
    def _mount(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)

    def make_read_only(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            result = self._mount("-o", "remount,bind,ro", str(self.folder))
            if result.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"cannot remount {self.folder} read-only: {result.stderr}")
            time.sleep(0.05)  # poll interval: a file is open for writing right now

    def make_writable(self) -> None:
        result = self._mount("-o", "remount,bind,rw", str(self.folder))
        assert result.returncode == 0, result.stderr

    def close(self) -> None:
        self._mount("-o", "remount,bind,rw", str(self.folder))
        subprocess.run(["umount", str(self.folder)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_capable(folder: Path) -> Iterator[ReadOnlyFolder]:
    mount = ReadOnlyFolder(folder)
    try:
        yield mount
    finally:
        mount.close()


def process_group(pgid: int) -> dict[int, str]:
    """pid -> command line (arguments joined by spaces) of every process in group ``pgid``."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            line = command_line(int(entry.name))
            if line:  # not a process that has just exited (a zombie shows nothing)
                found[int(entry.name)] = line
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return found


def command_line(pid: int) -> str:
    """What ``/proc/<pid>/cmdline`` shows anyone on the machine (``ps``, ``top``)."""
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def listening_sockets(pids: set[int]) -> list[tuple[str, int, int]]:
    """(local address, port, pid) of every TCP socket in LISTEN state owned by ``pids``,
    from ``ss -ltnpH`` (what an administrator checks)."""
    result = subprocess.run(
        ["ss", "-ltnpH"], capture_output=True, text=True, timeout=30, check=True
    )
    found = []
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        local = fields[3]
        address, _, port = local.rpartition(":")
        for owner in fields[5].split("),("):
            if "pid=" not in owner:
                continue
            pid = int(owner.split("pid=")[1].split(",")[0])
            if pid in pids:
                # Java's sockets are IPv6 ones; an IPv4 address shows as ::ffff:127.0.0.1.
                address = address.strip("[]").removeprefix("::ffff:")
                found.append((address, int(port), pid))
    return found


def spark_ui_port(sockets: list[tuple[str, int, int]], asked: int) -> int | None:
    """The port the Spark UI took when asked for ``asked`` (``spark.ui.port``): that one or,
    when taken, one of the next 16 Spark tries; found among the job's ``sockets`` without
    sending anything to its other ports."""
    ports = sorted(port for _, port, _ in sockets if asked <= port <= asked + 16)
    return ports[0] if ports else None
