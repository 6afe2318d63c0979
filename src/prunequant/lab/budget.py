"""The budget: how much worse than the original a compressed model may be, in its task metric's direction.

`max_drop` is absolute in the metric's own unit (0.01 = one point of a fraction metric such as top-1 or
mIoU, 0.5 = half a pixel of EPE) or relative, written as a percentage: "3%" = at most 3 % worse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prunequant.errors import ConfigError
from prunequant.tasks import MetricSpec

EPS = 1e-12


def parse_drop(value: float | str) -> tuple[float, bool]:
    """(amount, relative) of a `max_drop`: a number >= 0, or a string like "3%" (relative: 0.03)."""
    relative = isinstance(value, str)
    text = value.strip() if relative else value
    if relative:
        if not text.endswith("%"):
            raise ConfigError(f'max_drop must be a number or a percentage like "3%", got {value!r}')
        try:
            text = float(text[:-1]) / 100.0
        except ValueError:
            raise ConfigError(f'max_drop must be a number or a percentage like "3%", got {value!r}') from None
    amount = float(text)
    if not math.isfinite(amount) or amount < 0:
        raise ConfigError(f"max_drop must be a finite number >= 0, got {value!r}")
    return amount, relative


@dataclass(frozen=True)
class Budget:
    """The budget on one metric: `max_drop` absolute, or a fraction of the baseline when `relative`."""

    metric: MetricSpec
    max_drop: float
    relative: bool = False

    def drop(self, baseline: float, value: float) -> float:
        """How much worse `value` is than `baseline`, in the budget's terms (fraction when relative)."""
        if self.relative:
            return self.metric.relative_drop(baseline, value)
        return self.metric.drop(baseline, value)

    def allows(self, baseline: float | None, value: float | None) -> bool:
        """True when both are measured and `value` is at most `max_drop` worse than `baseline`."""
        if baseline is None or value is None or math.isnan(baseline) or math.isnan(value):
            return False
        return self.drop(baseline, value) <= self.max_drop + EPS

    def describe(self) -> str:
        """E.g. 'at most 3% worse EPE' or 'at most 1 point(s) of top-1 accuracy below the original'."""
        name = self.metric.label or self.metric.name
        if self.relative:
            return f"at most {100 * self.max_drop:g}% worse {name} than the original"
        way = "below" if self.metric.higher_is_better else "above"
        amount = self.metric.format(self.max_drop).removesuffix("%")
        unit = " point(s)" if self.metric.unit == "%" else ""
        return f"at most {amount}{unit} of {name} {way} the original"

    def to_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric.name,
            "max_drop": self.max_drop,
            "relative": self.relative,
            "text": self.describe(),
        }
