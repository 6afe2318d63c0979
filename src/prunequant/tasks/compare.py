"""Output comparison of two models on the same inputs: per-output absolute and relative error."""

from __future__ import annotations

from typing import Any

from prunequant.errors import ModelError
from prunequant.tasks.io import Outputs, describe, flatten_outputs, output_names


class OutputComparison:
    """Accumulates, per output tensor, max/mean absolute error and mean relative error of a candidate.

    The relative error is the mean absolute error over the reference's mean magnitude, sum|a - b| / sum|a|
    (0 when both are 0), so outputs near zero (a flow field's still background, a mask's zeros) cannot blow
    it up the way an element-wise |a - b| / |a| does.
    """

    def __init__(self) -> None:
        self.names: list[str] | None = None
        self._max: list[float] = []
        self._abs_sum: list[float] = []
        self._ref_sum: list[float] = []
        self._count: list[int] = []

    def update(self, reference: Outputs, candidate: Outputs, target: Any = None) -> None:
        ref, cand = flatten_outputs(reference), flatten_outputs(candidate)
        if len(ref) != len(cand) or any(a.shape != b.shape for a, b in zip(ref, cand, strict=True)):
            raise ModelError(
                f"the two models' outputs differ in structure: {describe(reference)} vs {describe(candidate)}"
            )
        if self.names is None:
            self.names = output_names(reference)
            zeros = [0.0] * len(ref)
            self._max, self._abs_sum, self._ref_sum = list(zeros), list(zeros), list(zeros)
            self._count = [0] * len(ref)
        for i, (a, b) in enumerate(zip(ref, cand, strict=True)):
            a, b = a.detach().float(), b.detach().float()
            diff = (a - b).abs()
            self._max[i] = max(self._max[i], diff.max().item() if diff.numel() else 0.0)
            self._abs_sum[i] += diff.sum().item()
            self._ref_sum[i] += a.abs().sum().item()
            self._count[i] += diff.numel()

    def compute(self) -> dict[str, Any]:
        """{'max_abs_diff', 'mean_abs_diff', 'mean_rel_diff'} over all outputs, and 'outputs': per-output."""
        if self.names is None:
            return {
                "max_abs_diff": float("nan"),
                "mean_abs_diff": float("nan"),
                "mean_rel_diff": float("nan"),
                "outputs": {},
            }
        per_output = {
            name: {
                "max_abs_diff": self._max[i],
                "mean_abs_diff": self._abs_sum[i] / max(1, self._count[i]),
                "mean_rel_diff": _relative(self._abs_sum[i], self._ref_sum[i]),
            }
            for i, name in enumerate(self.names)
        }
        total = max(1, sum(self._count))
        return {
            "max_abs_diff": max(self._max),
            "mean_abs_diff": sum(self._abs_sum) / total,
            "mean_rel_diff": _relative(sum(self._abs_sum), sum(self._ref_sum)),
            "outputs": per_output,
        }


def _relative(abs_diff_sum: float, reference_sum: float) -> float:
    """sum|a - b| / sum|a|; 0 when both are 0, inf when only the reference is all zeros."""
    if reference_sum > 0:
        return abs_diff_sum / reference_sum
    return 0.0 if abs_diff_sum == 0 else float("inf")
