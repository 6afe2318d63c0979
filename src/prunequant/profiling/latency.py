"""Wall-clock latency: median and p90 over repeated runs after warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class LatencyStats:
    """Latency in milliseconds over `repeats` timed runs."""

    median_ms: float
    p90_ms: float
    min_ms: float
    repeats: int

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(samples_ms: list[float]) -> LatencyStats:
    """Median, p90 and min of samples in ms."""
    ordered = sorted(samples_ms)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return LatencyStats(statistics.median(ordered), p90, ordered[0], len(ordered))


def measure_latency(fn: Callable[[], object], *, warmup: int = 3, repeats: int = 20) -> LatencyStats:
    """Call `fn` `warmup` times untimed, then `repeats` times timed."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return summarize(samples)
