"""Spread and Speedup: percentiles, IQR, width and the one direction of a speedup."""

from __future__ import annotations

import math

import pytest

from prunequant.timing import NOISY_SPREAD, Speedup, Spread, percentile


def test_percentiles_interpolate_between_order_statistics():
    samples = [float(v) for v in range(1, 11)]  # 1..10
    spread = Spread.of(list(reversed(samples)))
    assert spread.median == 5.5 and spread.count == 10
    assert spread.p10 == pytest.approx(1.9) and spread.p90 == pytest.approx(9.1)
    assert spread.iqr == pytest.approx(7.75 - 3.25)
    assert percentile([4.0], 0.9) == 4.0


def test_width_and_noisy_threshold():
    assert Spread.of([10.0] * 5).width == 1.0 and not Spread.of([10.0] * 5).noisy
    wide = Spread.of([1.0, 1.0, 2.0, 2.0])
    assert wide.width > NOISY_SPREAD and wide.noisy
    assert Spread.of([0.0, 0.0, 1.0]).width == math.inf


def test_speedup_is_reference_over_candidate():
    faster = Speedup.between(10.0, 5.0, [10.0, 12.0, 8.0], [5.0, 4.0, 4.0])
    assert faster.value == 2.0  # the printed medians divide to the printed speedup
    assert faster.rounds.median == 2.0 and faster.p10 < faster.p90
    assert Speedup.between(1.0, 1.0, [1.0], [0.0]).p90 == math.inf  # a call too fast for the clock
    slower = Speedup.between(5.0, 10.0, [5.0], [10.0])
    assert slower.value == 0.5 and slower.describe() == "0.50x (p10-p90 0.50-0.50x)"
