"""What every benchmark step returns: figures next to their references, and the sizes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


def quantile(values: list[float], q: int) -> float:
    """The ``q``-th percentile of ``values`` (of one value: that value; of none: NaN)."""
    if len(values) >= 2:
        return statistics.quantiles(values, n=100)[q - 1]
    return values[0] if values else float("nan")


@dataclass
class Figure:
    """One measured figure and the reference it is judged against."""

    name: str
    value: float
    unit: str
    reference: str
    reference_value: float | None
    target: str
    met: bool | None
    command: str
    detail: str = ""
    step: str = ""  # the --steps name that reproduces it
    higher_is_better: bool = True  # rates; False for times and latencies

    @property
    def ratio(self) -> float | None:
        if not self.reference_value:
            return None
        return self.value / self.reference_value


@dataclass
class Sizes:
    generation: int
    producer: int
    drain: int
    rounds: int  # alternated runs per compared pair (producer, drain); medians
    profile_rounds: int  # rounds of the per-component queries (one JVM); medians
    latency_s: int
    latency_rate: int
    warmup_s: int  # the live detector's start, measured apart from its steady state
    sustained_rates: tuple[int, ...]
    sustain_s: int
    sustain_repeats: int  # more runs of the first rate the job cannot hold; median
    demo: int


FULL = Sizes(generation=1_000_000, producer=500_000, drain=1_000_000, rounds=3,
             profile_rounds=2, latency_s=90, latency_rate=2000, warmup_s=30,
             sustained_rates=(5_000, 10_000, 20_000, 25_000, 30_000, 40_000, 50_000),
             sustain_s=60, sustain_repeats=2, demo=50_000)  # fmt: skip
SMOKE = Sizes(generation=20_000, producer=5_000, drain=5_000, rounds=1, profile_rounds=1,
              latency_s=25, latency_rate=200, warmup_s=5, sustained_rates=(200, 400),
              sustain_s=12, sustain_repeats=0, demo=2_000)  # fmt: skip
