"""Interleaved latency comparison (A B B A per round), as the design asks for on a shared machine."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def interleaved_latency(
    candidate: Callable[[], object], baseline: Callable[[], object], *, rounds: int = 10, warmup: int = 3
) -> dict[str, float]:
    """Median ms of `candidate` and `baseline`, and their ratio (candidate / baseline); 1.0 = no speedup.

    Each round runs baseline, candidate, candidate, baseline, so neither profits from going first or
    second; `ratio` is the median of the per-round ratios, so a load spike moves one round, not the result.
    """
    pairs: list[tuple[float, float]] = []
    with torch.inference_mode():
        for _ in range(warmup):
            baseline()
            candidate()
        for _ in range(max(1, rounds)):
            first = _timed(baseline)
            candidate_ms = (_timed(candidate) + _timed(candidate)) / 2
            pairs.append((candidate_ms, (first + _timed(baseline)) / 2))
    return {
        "candidate_ms": statistics.median(c for c, _ in pairs),
        "baseline_ms": statistics.median(b for _, b in pairs),
        "ratio": statistics.median(c / b for c, b in pairs),
    }


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3
