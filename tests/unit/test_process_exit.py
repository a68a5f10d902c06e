"""Stopping a broker we started leaves no zombie behind, whenever it exits."""

from __future__ import annotations

import subprocess
import sys
import time

from services import kafka


def test_a_child_that_exits_while_being_looked_at_is_reaped(monkeypatch):
    """The broker may exit between two looks at it; it must still be reaped, or a
    ``<defunct>`` entry stays in the process table (a CI run failed on exactly that)."""
    child = subprocess.Popen(["sleep", "30"])
    real_command = kafka.process_command

    def exits_while_looked_at(pid: int) -> str | None:
        if child.returncode is None and real_command(pid) and "<defunct>" not in real_command(pid):
            child.kill()  # exits now; not reaped: Popen.wait is never called
            deadline = time.monotonic() + 5
            while "<defunct>" not in (real_command(pid) or "") and time.monotonic() < deadline:
                time.sleep(0.01)
        return real_command(pid)

    monkeypatch.setattr(kafka, "process_command", exits_while_looked_at)
    try:
        assert kafka._wait_for_exit(child.pid, timeout_s=5) is True
        assert real_command(child.pid) is None, "the exited child is still a zombie"
    finally:
        if real_command(child.pid):
            child.kill()
            child.wait()


def test_a_child_whose_main_thread_ended_first_is_waited_for_and_reaped():
    """Like a JVM shutting down: the main thread is gone (``<defunct>``) while another
    thread still runs, and ``waitpid`` cannot reap the process until that one ends too
    (a CI run failed on exactly that)."""
    code = (
        "import ctypes, threading, time; "
        "threading.Thread(target=time.sleep, args=(1.0,)).start(); "
        "ctypes.CDLL(None).pthread_exit(None)"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 5
        while "<defunct>" not in (kafka.process_command(child.pid) or ""):
            assert time.monotonic() < deadline, "the child's main thread did not end"
            time.sleep(0.01)
        assert kafka._wait_for_exit(child.pid, timeout_s=10) is True
        assert kafka.process_command(child.pid) is None, "the exited child is still a zombie"
    finally:
        if kafka.process_command(child.pid):
            child.kill()
            child.wait()


def test_a_process_that_keeps_running_is_reported_as_running():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert kafka._wait_for_exit(child.pid, timeout_s=0.3) is False
    finally:
        child.kill()
        child.wait()
