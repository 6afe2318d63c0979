"""Speed of deployable forms against the original in torch eager fp32: one process, interleaved rounds.

`prunequant.export.bench` times [original, form 1, form 2, ...] interleaved (A B C A B C ...) at each
batch size, so load on a shared machine hits them alike. Its rows carry the speedup (original median /
form median), the p10/p90 of the per-round ratios and whether the rounds were noisy. The load average is
read before and after, so figures taken on a busy machine say so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from prunequant.export.bench import BenchRow, Candidate, bench, malloc_tuned, random_inputs
from prunequant.tasks import Inputs


@dataclass(frozen=True)
class Speed:
    """One form's speedup over the original at one batch size (> 1: faster), its spread, and the runtime
    that ran the form (bench's name: "onnxruntime", "torch-int8 (pt2e+inductor)", ...)."""

    speedup: float
    p10: float
    p90: float
    median_ms: float
    original_ms: float
    noisy: bool
    runtime: str

    def to_dict(self) -> dict[str, float | bool | str]:
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
        Interleaved rounds, and timed calls per model within each.

    Returns
    -------
    One {batch: Speed} per form (in `forms` order) and the measurement Conditions.
    """
    load_before = os.getloadavg()[0]
    report = bench(
        [original, *forms], batches, threads, rounds=rounds, repeats=repeats, seed=seed, example=example
    )
    speeds = _from_spread(report.rows, forms)
    return speeds, _conditions(threads, rounds, repeats, batches, load_before)


def _from_spread(rows: Sequence[BenchRow], forms: Sequence[Candidate]) -> list[dict[int, Speed]]:
    """Speeds from bench rows (per batch: the original, then each form), with their per-round spread; a
    spread bench could not compute (a single round) is the speedup itself."""
    per_batch = len(forms) + 1
    speeds: list[dict[int, Speed]] = [{} for _ in forms]
    for start in range(0, len(rows), per_batch):
        first, *others = rows[start : start + per_batch]
        for index, row in enumerate(others):
            speeds[index][row.batch] = Speed(
                row.ratio_vs_first,
                row.ratio_vs_first if row.speedup_p10 is None else row.speedup_p10,
                row.ratio_vs_first if row.speedup_p90 is None else row.speedup_p90,
                row.median_ms,
                first.median_ms,
                row.noisy,
                row.runtime,
            )
    return speeds


def first_calls(candidate: Candidate, example: Inputs, batches: Sequence[int], seed: int) -> dict[str, float]:
    """{batch: seconds} of one call of `candidate` per batch size, before any timing: a compiled runtime
    compiles each shape here (so a failure is the form's, raised as its runtime raises it, not the whole
    bench's), and the seconds include that compilation."""
    times = {}
    for batch in batches:
        prepared = candidate.prepare(random_inputs(example, batch, seed))
        start = time.perf_counter()
        candidate.predict(prepared)
        times[str(batch)] = round(time.perf_counter() - start, 4)
    return times


def _conditions(
    threads: int, rounds: int, repeats: int, batches: Sequence[int], load_before: float
) -> Conditions:
    load = max(load_before, os.getloadavg()[0])
    return Conditions(
        threads, rounds, repeats, list(batches), malloc_tuned(), round(load, 2), under_load(load, threads)
    )


def under_load(load_avg: float, threads: int) -> bool:
    """True when more runnable processes than our own `threads` (plus half a core of slack) share the CPU."""
    return load_avg > threads + 0.5
