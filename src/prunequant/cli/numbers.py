"""argparse types for numeric options: NaN, inf and out-of-range values are usage errors (exit 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        name = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """Any finite float."""
    return float(_number(text, float))


def ranged(
    kind: type,
    low: float | None = None,
    high: float | None = None,
    *,
    open_high: bool = False,
    open_low: bool = False,
) -> Callable[[str], float | int]:
    """An argparse type for `kind` (int or float) in [low, high] (open ends with open_low / open_high)."""

    def parse(text: str) -> float | int:
        value = _number(text, kind)
        too_low = low is not None and (value <= low if open_low else value < low)
        too_high = high is not None and (value >= high if open_high else value > high)
        if too_low or too_high:
            left = "(" if open_low else "["
            right = ")" if open_high else "]"
            span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
            raise argparse.ArgumentTypeError(f"expected a value in {span}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__} value"
    return parse


positive_int = ranged(int, 1)
nonneg_int = ranged(int, 0)
positive_float = ranged(float, 0.0, open_low=True)
nonneg_float = ranged(float, 0.0)
fraction = ranged(float, 0.0, 1.0, open_high=True)
unit_interval = ranged(float, 0.0, 1.0)
