"""Measuring tools for the benchmarks: process memory, machine description, Kafka's own tools.

Memory comes from ``/proc`` (Linux), which is what the benchmarks run on; no extra library.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.java import require_java
from services.kafka import kafka_classpath
from services.settings import load_settings


def machine_description() -> dict[str, str]:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        cpu = match.group(1) if match else cpu
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    java = subprocess.run([str(require_java()), "-version"], capture_output=True, text=True)
    settings = load_settings()
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "memory": f"{memory_gib:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "java": java.stderr.splitlines()[0] if java.stderr else "unknown",
        "kafka": settings.kafka_version,
        "spark": settings.spark_version,
    }


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, stack = [], [root]
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children.get(pid, []))
    return tree


def rss_bytes(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(match.group(1)) * 1024 if match else 0


def command_line(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


@dataclass
class MemorySampler:
    """Samples the RSS of process groups every ``interval_s`` and keeps the peaks.

    ``roles`` maps a role name to a predicate on a process's command line; ``roots`` are
    the PIDs whose process trees are watched.
    """

    roles: dict[str, Callable[[str], bool]]
    interval_s: float = 0.2
    roots: list[int] = field(default_factory=list)
    peaks: dict[str, int] = field(default_factory=dict)
    peak_total: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            usage = dict.fromkeys(self.roles, 0)
            seen: set[int] = set()
            for root in list(self.roots):
                for pid in process_tree(root):
                    if pid in seen:
                        continue
                    seen.add(pid)
                    line = command_line(pid)
                    for role, matches in self.roles.items():
                        if matches(line):
                            usage[role] += rss_bytes(pid)
                            break
            for role, value in usage.items():
                self.peaks[role] = max(self.peaks.get(role, 0), value)
            self.peak_total = max(self.peak_total, sum(usage.values()))


_MEMORY_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def parse_memory(text: str) -> float:
    """Bytes in ``docker stats``' ``123.4MiB`` notation."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([A-Za-z]+)\s*", text)
    if not match or match[2] not in _MEMORY_UNITS:
        raise ValueError(f"not a docker stats memory figure: {text!r}")
    return float(match[1]) * _MEMORY_UNITS[match[2]]


class ContainerMemorySampler:
    """Containers' memory (those named ``<project>-...``), summed, sampled with ``docker
    stats`` until stopped; the processes' RSS is :class:`MemorySampler`'s.

    ``docker stats`` reports usage without the page cache, the figure that must fit in a
    Docker Desktop VM. ``peak`` is the largest sum seen across samples.
    """

    def __init__(self, project: str = "login-pipeline") -> None:
        self.project = project
        self.samples: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            result = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}"],
                capture_output=True,
                text=True,
                check=False,
            )
            sample = {}
            for line in result.stdout.splitlines():
                name, usage = line.split(" ", 1)
                if name.startswith(f"{self.project}-"):
                    sample[name] = parse_memory(usage.split("/")[0])
            if sample:
                self.samples.append(sample)

    def __enter__(self) -> ContainerMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    @property
    def peak(self) -> tuple[float, dict[str, float]]:
        """The largest total and the per-container figures of that sample."""
        best = max(self.samples, key=lambda s: sum(s.values()), default={})
        return sum(best.values()), best


def kafka_tool(main_class: str, *args: str, timeout: float = 900) -> str:
    """Run one of Kafka's own tools (kafka-tools jar) and return its output."""
    classpath = ":".join(str(p) for p in kafka_classpath())
    result = subprocess.run(
        [str(require_java()), "-Xmx512m", "-cp", classpath, main_class, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{main_class} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout
