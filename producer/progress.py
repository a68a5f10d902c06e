"""What the user sees while events are produced.

On a terminal a tqdm bar shows rate and ETA; in a container or a pipe, where a bar turns
into garbage, a log line every few seconds says the same. Both read the publisher's
:class:`~producer.delivery.DeliveryStats`, so they report acknowledgements, not hopes.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Protocol, TextIO

from tqdm import tqdm

from producer.delivery import DeliveryStats

log = logging.getLogger("producer")

LOG_INTERVAL_S = 5.0


class Progress(Protocol):
    def update(self, stats: DeliveryStats) -> None: ...

    def close(self, stats: DeliveryStats) -> None: ...


class NoProgress:
    def update(self, stats: DeliveryStats) -> None:
        pass

    def close(self, stats: DeliveryStats) -> None:
        pass


class BarProgress:
    """A tqdm bar over events sent, with acknowledged and failed counts beside it."""

    def __init__(self, total: int | None, stream: TextIO) -> None:
        self._bar = tqdm(
            total=total,
            unit=" events",
            unit_scale=True,
            file=stream,
            dynamic_ncols=True,
            desc="producing",
            mininterval=0.25,
        )
        self._shown = 0

    def update(self, stats: DeliveryStats) -> None:
        self._bar.update(stats.sent - self._shown)
        self._shown = stats.sent
        self._bar.set_postfix(acked=stats.acknowledged, failed=stats.failed, refresh=False)

    def close(self, stats: DeliveryStats) -> None:
        self.update(stats)
        self._bar.close()


class LogProgress:
    """One log line every ``interval_s`` seconds, for containers and pipes."""

    def __init__(self, total: int | None, interval_s: float = LOG_INTERVAL_S) -> None:
        self._total = total
        self._interval = interval_s
        self._started = time.monotonic()
        self._next = self._started + interval_s

    def update(self, stats: DeliveryStats) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self._interval
        elapsed = now - self._started
        rate = stats.sent / elapsed if elapsed > 0 else 0.0
        line = (
            f"{stats.sent:,} sent, {stats.acknowledged:,} acknowledged, {stats.failed:,} failed, "
            f"{rate:,.0f} events/s"
        )
        if self._total:
            left = max(self._total - stats.sent, 0)
            eta = left / rate if rate > 0 else float("inf")
            line += f", {100 * stats.sent / self._total:.1f}% of {self._total:,}, ETA {eta:,.0f}s"
        log.info(line)

    def close(self, stats: DeliveryStats) -> None:
        pass


def make_progress(
    mode: str,
    total: int | None,
    stream: TextIO = sys.stderr,
    interval_s: float = LOG_INTERVAL_S,
) -> Progress:
    """``auto`` picks the bar on a terminal and log lines anywhere else."""
    if mode == "auto":
        mode = "bar" if stream.isatty() else "log"
    if mode == "bar":
        return BarProgress(total, stream)
    if mode == "log":
        return LogProgress(total, interval_s)
    return NoProgress()
