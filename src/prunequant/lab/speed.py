"""Speed of deployable forms against the original in torch eager fp32: one process, interleaved rounds.

Every round is one `prunequant.export.bench` pass over [original, form 1, form 2, ...] (A B C A B C ...)
at each batch size, so load on a shared machine hits them alike. A form's speedup is the median over
rounds of original median / form median; p10 and p90 over rounds give its spread. The load average is
read before and after, so figures taken on a busy machine say so.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from prunequant.export.bench import Candidate, bench, malloc_tuned
from prunequant.tasks import Inputs

NOISY_SPREAD = 0.25
"""A speedup whose p10-p90 range exceeds this fraction of its median is flagged `noisy`."""


@dataclass(frozen=True)
class Speed:
    """One form's speedup over the original at one batch size (> 1: faster), and its spread."""

    speedup: float
    p10: float
    p90: float
    median_ms: float
    original_ms: float
    noisy: bool

    def to_dict(self) -> dict[str, float | bool]:
        return asdict(self)


@dataclass(frozen=True)
class Conditions:
    """What the speeds were measured under."""

    threads: int
    rounds: int
    repeats: int
    batches: list[int]
    malloc_tuned: bool
    load_avg: float
    under_load: bool
    original: str = "torch eager fp32 (the original model as loaded, eval mode)"

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def measure_speeds(
    original: Candidate,
    forms: Sequence[Candidate],
    batches: Sequence[int],
    threads: int,
    *,
    rounds: int,
    repeats: int,
    seed: int,
    example: Inputs,
) -> tuple[list[dict[int, Speed]], Conditions]:
    """Per form, {batch: Speed} against `original`, and the conditions; `example` fixes input shapes.

    Parameters
    ----------
    original:
        The original model in torch eager fp32: the first candidate of every bench pass.
    forms:
        The deployable forms to time (torch, onnxruntime, ...).
    rounds, repeats:
        Interleaved bench passes, and timed calls per model within each.

    Returns
    -------
    One {batch: Speed} per form (in `forms` order) and the measurement Conditions.
    """
    load_before = os.getloadavg()[0]
    ratios: list[dict[int, list[float]]] = [{batch: [] for batch in batches} for _ in forms]
    medians: list[dict[int, list[float]]] = [{batch: [] for batch in batches} for _ in [original, *forms]]
    for index in range(rounds):
        report = bench(
            [original, *forms],
            batches,
            threads,
            rounds=1,
            repeats=repeats,
            seed=seed + index,
            example=example,
        )
        for row_index, row in enumerate(report.rows):
            position = row_index % (len(forms) + 1)
            medians[position][row.batch].append(row.median_ms)
            if position:
                ratios[position - 1][row.batch].append(row.ratio_vs_first)
    load = max(load_before, os.getloadavg()[0])
    speeds = [
        {batch: _speed(ratios[i][batch], medians[i + 1][batch], medians[0][batch]) for batch in batches}
        for i in range(len(forms))
    ]
    conditions = Conditions(
        threads, rounds, repeats, list(batches), malloc_tuned(), round(load, 2), under_load(load, threads)
    )
    return speeds, conditions


def under_load(load_avg: float, threads: int) -> bool:
    """True when more runnable processes than our own `threads` (plus half a core of slack) share the CPU."""
    return load_avg > threads + 0.5


def _speed(ratios: list[float], form_ms: list[float], original_ms: list[float]) -> Speed:
    median = statistics.median(ratios)
    p10, p90 = _percentile(ratios, 0.1), _percentile(ratios, 0.9)
    return Speed(
        median,
        p10,
        p90,
        statistics.median(form_ms),
        statistics.median(original_ms),
        (p90 - p10) > NOISY_SPREAD * median,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
