"""Spread of timing samples (median, p10, p90, IQR) and speedups: baseline_ms / candidate_ms, > 1 = faster."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

NOISY_SPREAD = 1.25
"""A ratio or latency is `noisy` when its p90 / p10 over the rounds exceeds this: the slowest tenth of the
rounds is more than 25% away from the fastest tenth, too wide to tell a 1.2x gain from load."""


def percentile(samples: Sequence[float], q: float) -> float:
    """The `q`-quantile (0..1) of `samples`, linearly interpolated between order statistics."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    if high == low or ordered[high] == ordered[low]:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Spread:
    """Median, p10, p90 and quartiles of `count` samples."""

    median: float
    p10: float
    p90: float
    q25: float
    q75: float
    count: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        """The spread of `samples` (at least one)."""
        return cls(*(percentile(samples, q) for q in (0.5, 0.1, 0.9, 0.25, 0.75)), len(samples))

    @property
    def iqr(self) -> float:
        """q75 - q25."""
        return self.q75 - self.q25

    @property
    def width(self) -> float:
        """p90 / p10 (1.0 = no spread; inf when p10 is not positive)."""
        return self.p90 / self.p10 if self.p10 > 0 else math.inf

    @property
    def noisy(self) -> bool:
        """True when `width` exceeds NOISY_SPREAD."""
        return self.width > NOISY_SPREAD

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "iqr": self.iqr}


@dataclass(frozen=True)
class Speedup:
    """How much faster a candidate is than a reference, from one interleaved measurement.

    `value` is reference median ms / candidate median ms (> 1: the candidate is faster), so it agrees with
    the two medians printed beside it; `rounds` is the spread of the per-round ratios, the same direction.
    """

    value: float
    rounds: Spread

    @classmethod
    def between(
        cls,
        reference_ms: float,
        candidate_ms: float,
        reference_rounds: Sequence[float],
        candidate_rounds: Sequence[float],
    ) -> Speedup:
        """The speedup of a candidate over a reference from their medians and per-round medians."""
        ratios = [_ratio(r, c) for r, c in zip(reference_rounds, candidate_rounds, strict=True)]
        return cls(_ratio(reference_ms, candidate_ms), Spread.of(ratios))

    @property
    def p10(self) -> float:
        return self.rounds.p10

    @property
    def p90(self) -> float:
        return self.rounds.p90

    @property
    def noisy(self) -> bool:
        """True when the per-round ratios spread wider than NOISY_SPREAD."""
        return self.rounds.noisy

    def describe(self) -> str:
        """'1.52x (p10-p90 1.40-1.61x)'."""
        return f"{self.value:.2f}x (p10-p90 {self.p10:.2f}-{self.p90:.2f}x)"

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "p10": self.p10, "p90": self.p90, "median_of_rounds": self.rounds.median}


def _ratio(reference_ms: float, candidate_ms: float) -> float:
    """reference / candidate; inf when the candidate took no measurable time."""
    return reference_ms / candidate_ms if candidate_ms > 0 else math.inf
