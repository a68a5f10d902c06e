"""Say what a long wait is for, while it lasts.

A newcomer who sees nothing for a minute thinks the command hangs. Starting Kafka on a
fresh clone (its jars come from Maven Central first) and a first Spark start (the Kafka
connector resolved, Spark's classes recorded once) each take that long, and their own
output goes to log files. :class:`Waiting` prints one line when a wait starts, and then,
whenever nothing else was printed for ``every_s`` seconds, a line saying what it still
waits for and for how long (on a terminal the same line, rewritten; in a log, new lines).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO


class Waiting:
    """``with Waiting("Kafka to answer"): broker.start()``; or, around a process whose
    output is passed through, ``waiting.say(line)`` for each of its lines.

    :meth:`tick` is separate from the thread that calls it, and ``clock`` replaceable, so the
    lines can be checked without waiting.
    """

    def __init__(
        self,
        what: str,
        stream: TextIO | None = None,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        closing: bool = True,
    ) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stdout
        self.every_s = every_s
        self.clock = clock
        self.closing = closing  # print how long it took when the block ends
        self.terminal = self.stream.isatty()
        self.started = self.last_line = 0.0
        self._rewritten = False  # a progress line is on the terminal, not yet ended
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self, text: str) -> None:
        if self._rewritten:
            text = "\r\x1b[K" + text  # replace the progress line on the terminal
            self._rewritten = False
        self.stream.write(text)
        self.stream.flush()

    def tick(self) -> None:
        """A progress line if nothing was printed for ``every_s`` seconds."""
        with self._lock:
            now = self.clock()
            if now - self.last_line < self.every_s:
                return
            line = f"    waiting for {self.what}: {now - self.started:.0f} s"
            if self.terminal:
                self._write(line)
                self._rewritten = True
            else:
                self._write(line + "\n")
                self.last_line = now

    def say(self, text: str) -> None:
        """Print another program's output line; it counts as news, so no progress line."""
        with self._lock:
            self._write(text if text.endswith("\n") else text + "\n")
            self.last_line = self.clock()

    def _run(self) -> None:
        while not self._done.wait(1.0 if self.terminal else min(1.0, self.every_s)):
            self.tick()

    def __enter__(self) -> Waiting:
        self.started = self.last_line = self.clock()
        self._write(f"    waiting for {self.what} ...\n")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            if kind is None and self.closing:
                self._write(f"    {self.what}: ready after {self.clock() - self.started:.1f} s\n")
            elif self._rewritten:  # keep the last progress line, end it
                self._rewritten = False
                self._write("\n")
