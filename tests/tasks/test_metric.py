"""MetricSpec: direction arithmetic, display units, titles, sort keys."""

from __future__ import annotations

import math

import pytest

from prunequant.errors import ConfigError
from prunequant.tasks import MetricSpec

TOP1 = MetricSpec("top1", "%", True, "top-1 accuracy")
EPE = MetricSpec("epe", "px", False, "end-point error")


def test_direction_arithmetic():
    assert TOP1.is_better(0.9, 0.8) and not TOP1.is_better(0.8, 0.8)
    assert EPE.is_better(1.0, 2.0) and not EPE.is_better(2.0, 1.0)
    assert TOP1.drop(0.9, 0.85) == pytest.approx(0.05)
    assert EPE.drop(2.0, 2.5) == pytest.approx(0.5) and EPE.drop(2.0, 1.5) == pytest.approx(-0.5)
    assert EPE.relative_drop(2.0, 2.06) == pytest.approx(0.03)
    assert EPE.relative_drop(0.0, 0.0) == 0.0 and EPE.relative_drop(0.0, 1.0) == math.inf


def test_sort_key_puts_better_first_and_nan_last():
    assert sorted([0.5, float("nan"), 0.9, 0.7], key=TOP1.sort_key)[:3] == [0.9, 0.7, 0.5]
    ordered = sorted([3.0, float("nan"), 1.0, 2.0], key=EPE.sort_key)
    assert ordered[:3] == [1.0, 2.0, 3.0] and math.isnan(ordered[3])


def test_display_and_format():
    assert TOP1.display(0.5) == 50.0 and EPE.display(1.5) == 1.5
    assert TOP1.format(0.91234) == "91.23%" and EPE.format(1.5, 1) == "1.5 px"
    assert MetricSpec("mse").format(0.25) == "0.25"
    assert TOP1.format(None) == "n/a" and EPE.format(math.nan) == "n/a"
    assert EPE.title == "end-point error (px, lower is better)"
    assert MetricSpec("mse", higher_is_better=False).title == "mse (lower is better)"
    assert TOP1.arrow == "↑" and EPE.arrow == "↓"


@pytest.mark.parametrize("name", ["", "top 1", "1st"])
def test_name_must_be_an_identifier(name):
    with pytest.raises(ConfigError, match="identifier"):
        MetricSpec(name)
