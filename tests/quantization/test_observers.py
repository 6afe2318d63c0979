"""Range observers: seed 003 Alg. 2's moving-average bounds, EMA, running extremes, percentiles."""

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.quantization import Quantizer, QuantizerSpec
from prunequant.quantization.observers import RangeObserver

BATCHES = [torch.tensor([-1.0, 0.5, 3.0]), torch.tensor([-3.0, 5.0]), torch.tensor([1.0, 7.0, 4.0])]


def observe(observer: RangeObserver, batches=BATCHES) -> list[tuple[float, float]]:
    bounds = []
    for batch in batches:
        observer.update(batch)
        bounds.append((observer.lower.item(), observer.upper.item()))
    return bounds


def test_average_follows_alg2_update_rule_exactly():
    # l(t+1) = (l(t) * t + min(h)) / (t + 1), u likewise with max(h)
    bounds = observe(RangeObserver("minmax", "average"))
    assert bounds == [(-1.0, 3.0), (-2.0, 4.0), (-1.0, 5.0)]


def test_alg2_bounds_give_scale_and_zero_point():
    quantizer = Quantizer(QuantizerSpec(bits=4, symmetric=False, statistic="minmax", averaging="average"))
    quantizer.train()
    for batch in BATCHES:
        quantizer(batch)
    # range [-1, 5] over 2^4 levels: s = 6 / 15, z = round(1 / 0.4) = round(2.5) = 2 (half to even)
    assert quantizer.scale.item() == pytest.approx(0.4)
    assert quantizer.zero_point.item() == 2
    assert quantizer.observer.steps.item() == 3


def test_ema_decay_and_running_extremes():
    assert observe(RangeObserver("minmax", "average", ema_decay=0.5)) == [
        (-1.0, 3.0),
        (-2.0, 4.0),
        (-0.5, 5.5),
    ]
    assert observe(RangeObserver("minmax", "extreme")) == [(-1.0, 3.0), (-3.0, 5.0), (-3.0, 7.0)]
    assert observe(RangeObserver("minmax", "last"))[-1] == (1.0, 7.0)


def test_percentile_is_the_mean_of_per_batch_percentiles():
    observer = RangeObserver("percentile", "average", percentile=99.0)
    ramp = torch.arange(101.0)
    assert observe(observer, [ramp, 2 * ramp]) == [pytest.approx((1.0, 99.0)), pytest.approx((1.5, 148.5))]


def test_absmax_per_channel_along_an_axis():
    observer = RangeObserver("absmax", "last", channels=2, axis=0)
    observer.update(torch.tensor([[1.0, -4.0], [0.5, 0.25]]))
    assert observer.lower.tolist() == [-4.0, -0.5] and observer.upper.tolist() == [4.0, 0.5]


def test_reset_and_bad_combinations():
    observer = RangeObserver("minmax", "extreme")
    observe(observer)
    observer.reset()
    assert observer.steps.item() == 0
    assert observe(observer, BATCHES[1:2]) == [(-3.0, 5.0)]
    with pytest.raises(ConfigError, match="per tensor"):
        RangeObserver("percentile", "average", channels=4, axis=0)
    with pytest.raises(ConfigError, match="averaging"):
        RangeObserver("minmax", "median")
