"""MetricSpec: a metric's name, unit and direction, and the arithmetic that follows from the direction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from prunequant.errors import ConfigError


@dataclass(frozen=True)
class MetricSpec:
    """One metric a task reports.

    Parameters
    ----------
    name:
        Column name, e.g. ``"top1"``, ``"epe"``, ``"miou"``.
    unit:
        Display unit: ``"%"`` for fractions shown as percent, ``"px"``, ``"dB"``, or ``""``.
    higher_is_better:
        Direction; every "best", "drop" and budget follows it.
    label:
        Human label for tables and plot axes; defaults to the name.
    """

    name: str
    unit: str = ""
    higher_is_better: bool = True
    label: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.isidentifier():
            raise ConfigError(f"metric name must be an identifier, got {self.name!r}")

    @property
    def title(self) -> str:
        """Label with unit and direction arrow, for a table header or axis: 'EPE (px, lower is better)'."""
        direction = "higher is better" if self.higher_is_better else "lower is better"
        unit = f"{self.unit}, " if self.unit else ""
        return f"{self.label or self.name} ({unit}{direction})"

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def display(self, value: float) -> float:
        """Value in display units: fractions with unit '%' are multiplied by 100."""
        return 100.0 * value if self.unit == "%" else value

    def format(self, value: float | None, digits: int = 2) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "n/a"
        suffix = "%" if self.unit == "%" else (f" {self.unit}" if self.unit else "")
        return f"{self.display(value):.{digits}f}{suffix}"

    def is_better(self, a: float, b: float) -> bool:
        """True when `a` is strictly better than `b`."""
        return a > b if self.higher_is_better else a < b

    def drop(self, baseline: float, value: float) -> float:
        """How much worse `value` is than `baseline`, in the metric's own units (negative: better)."""
        return baseline - value if self.higher_is_better else value - baseline

    def relative_drop(self, baseline: float, value: float) -> float:
        """`drop` as a fraction of |baseline| (inf when the baseline is 0 and value is worse)."""
        worse = self.drop(baseline, value)
        if baseline == 0:
            return 0.0 if worse <= 0 else math.inf
        return worse / abs(baseline)

    def sort_key(self, value: float) -> float:
        """A key that sorts better values first (NaN last)."""
        if value is None or math.isnan(value):
            return math.inf
        return -value if self.higher_is_better else value
