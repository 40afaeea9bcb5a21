"""Timing samples and their summaries."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    """A summary of per-call durations, in milliseconds."""

    n: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Stats:
        """Summarise durations given in seconds (at least one)."""
        ms = sorted(value * 1000.0 for value in seconds)
        p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) >= 20 else ms[-1]
        return cls(len(ms), statistics.median(ms), p95, statistics.fmean(ms), ms[0])

    @property
    def per_second(self) -> float:
        """Calls per second at the mean duration."""
        return 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")


def timed(call: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    call()
    return time.perf_counter() - start
