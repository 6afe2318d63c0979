"""compare(): time several callables in one process over interleaved rounds, against a named baseline.

Each callable is warmed up, then every round calls each one `repeats` times in turn. The order rotates by
one place every round, and every second cycle of rotations runs reversed (A B, B A, B A, A B for two), so
no callable profits from going first or from the one before it; a load spike hits one round of everyone.

torch.utils.benchmark is not used: its Timer.blocked_autorange / adaptive_autorange time ONE statement in
blocks until its own stopping rule, which cannot interleave several callables round by round; the
interleaving is what makes a ratio hold on a shared machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass

import torch

from prunequant.errors import ConfigError
from prunequant.timing.stats import Speedup, Spread
from prunequant.timing.threads import ThreadPlan, plan_threads, torch_threads
from prunequant.validation import check_int_range

Clock = Callable[[], float]
"""Seconds, monotonic (time.perf_counter); tests inject a fake one."""


@dataclass(frozen=True)
class Timing:
    """One callable's latency (ms, over every timed call) and its speedup over the baseline.

    `noisy`: its per-round speedups (the baseline: its per-round latencies) spread wider than NOISY_SPREAD,
    or the load average exceeded the cores during the measurement.
    """

    name: str
    latency: Spread
    rounds_ms: tuple[float, ...]
    speedup: Speedup
    noisy: bool

    @property
    def median_ms(self) -> float:
        return self.latency.median

    @property
    def p10_ms(self) -> float:
        return self.latency.p10

    @property
    def p90_ms(self) -> float:
        return self.latency.p90

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "latency_ms": self.latency.to_dict(),
            "speedup": self.speedup.to_dict(),
            "noisy": self.noisy,
        }


@dataclass(frozen=True)
class Comparison:
    """The result of `compare`: one Timing per callable (in the order given) and the conditions."""

    timings: tuple[Timing, ...]
    baseline: str
    rounds: int
    repeats: int
    warmup: int
    threads: ThreadPlan

    def __getitem__(self, name: str) -> Timing:
        for timing in self.timings:
            if timing.name == name:
                return timing
        raise KeyError(name)

    @property
    def noisy(self) -> bool:
        """Any callable noisy (which includes the machine being busier than its cores)."""
        return any(t.noisy for t in self.timings)

    def ratio(self, reference: str, candidate: str) -> Speedup:
        """The speedup of `candidate` over `reference` (any two of the callables), same rounds."""
        ref, cand = self[reference], self[candidate]
        return Speedup.between(ref.median_ms, cand.median_ms, ref.rounds_ms, cand.rounds_ms)

    def to_dict(self) -> dict:
        return {
            "baseline": self.baseline,
            "rounds": self.rounds,
            "repeats": self.repeats,
            "warmup": self.warmup,
            "threads": self.threads.to_dict(),
            "noisy": self.noisy,
            "timings": [t.to_dict() for t in self.timings],
        }


def round_order(names: list[str], index: int) -> list[str]:
    """The call order of round `index`: rotated by `index`, reversed on every second cycle."""
    shift = index % len(names)
    order = names[shift:] + names[:shift]
    return order[::-1] if (index // len(names)) % 2 else order


def compare(
    calls: Mapping[str, Callable[[], object]],
    *,
    baseline: str | None = None,
    rounds: int = 5,
    repeats: int = 1,
    warmup: int = 3,
    threads: ThreadPlan | None = None,
    clock: Clock = time.perf_counter,
) -> Comparison:
    """Time every callable of `calls` interleaved; speedups are against `baseline` (default the first).

    Parameters
    ----------
    calls:
        Name -> a callable taking no arguments (run under torch.inference_mode).
    rounds, repeats, warmup:
        Interleaved rounds; timed calls per callable per round; untimed calls per callable first.
    threads:
        A plan the caller already applied to every runtime (e.g. onnxruntime sessions built with
        `plan.used` threads). Without it, `plan_threads(torch.get_num_threads())` decides and torch runs
        at `plan.used` threads for the measurement, restored afterwards.
    clock:
        Seconds; injected by tests.

    Returns
    -------
    A Comparison: per callable the latency spread over all timed calls, the per-round medians and the
    speedup over the baseline (baseline median / its median; spread over the per-round ratios).
    """
    if not calls:
        raise ConfigError("nothing to time: give at least one callable")
    names = list(calls)
    baseline = names[0] if baseline is None else baseline
    if baseline not in calls:
        raise ConfigError(f"baseline {baseline!r} is not among the timed callables ({', '.join(names)})")
    check_int_range("rounds", rounds, 1, 100_000)
    check_int_range("repeats", repeats, 1, 100_000)
    check_int_range("warmup", warmup, 0, 100_000)
    plan = threads or plan_threads(torch.get_num_threads())
    samples: dict[str, list[float]] = {name: [] for name in names}
    per_round: dict[str, list[float]] = {name: [] for name in names}
    with torch_threads(plan.used) if threads is None else nullcontext(), torch.inference_mode():
        for name in names:
            for _ in range(warmup):
                calls[name]()
        for index in range(rounds):
            for name in round_order(names, index):
                this_round = [_timed(calls[name], clock) for _ in range(repeats)]
                samples[name].extend(this_round)
                per_round[name].append(statistics.median(this_round))
    base = Spread.of(samples[baseline])
    timings = []
    for name in names:
        latency = Spread.of(samples[name])
        speedup = Speedup.between(base.median, latency.median, per_round[baseline], per_round[name])
        spread_noisy = Spread.of(per_round[name]).noisy if name == baseline else speedup.noisy
        timings.append(Timing(name, latency, tuple(per_round[name]), speedup, spread_noisy or plan.busy))
    return Comparison(tuple(timings), baseline, rounds, repeats, warmup, plan)


def measure(
    fn: Callable[[], object],
    *,
    rounds: int = 10,
    warmup: int = 3,
    clock: Clock = time.perf_counter,
    threads: ThreadPlan | None = None,
) -> Timing:
    """The latency of one callable: `compare` with it alone, `rounds` timed calls."""
    return compare({"model": fn}, rounds=rounds, warmup=warmup, threads=threads, clock=clock)["model"]


def _timed(fn: Callable[[], object], clock: Clock) -> float:
    start = clock()
    fn()
    return (clock() - start) * 1e3
