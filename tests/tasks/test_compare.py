"""OutputComparison: per-output max/mean absolute and relative errors, accumulated over batches."""

from __future__ import annotations

import math

import pytest
import torch

from prunequant.errors import ModelError
from prunequant.tasks import OutputComparison


def test_errors_by_hand_over_two_outputs_and_batches():
    comparison = OutputComparison()
    ref = (torch.tensor([1.0, 2.0]), torch.tensor([[4.0]]))
    comparison.update(ref, (torch.tensor([1.5, 2.0]), torch.tensor([[3.0]])))
    comparison.update(ref, (torch.tensor([1.0, 1.0]), torch.tensor([[4.0]])))
    result = comparison.compute()
    first, second = result["outputs"]["output0"], result["outputs"]["output1"]
    assert first["max_abs_diff"] == 1.0 and first["mean_abs_diff"] == pytest.approx(1.5 / 4)
    assert first["mean_rel_diff"] == pytest.approx((0.5 / 1 + 1 / 2) / 4, rel=1e-4)
    assert second["max_abs_diff"] == 1.0 and second["mean_abs_diff"] == pytest.approx(0.5)
    assert result["max_abs_diff"] == 1.0 and result["mean_abs_diff"] == pytest.approx(2.5 / 6)


def test_identical_outputs_and_zero_reference():
    comparison = OutputComparison()
    zeros = {"a": torch.zeros(3)}
    comparison.update(zeros, {"a": torch.zeros(3)})
    result = comparison.compute()
    assert result["max_abs_diff"] == 0.0 and result["mean_rel_diff"] == 0.0
    assert list(result["outputs"]) == ["output.a"]


def test_structure_mismatch_and_empty():
    with pytest.raises(ModelError, match="differ in structure"):
        OutputComparison().update(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ModelError, match="tuple"):
        OutputComparison().update((torch.zeros(1), torch.zeros(1)), torch.zeros(1))
    empty = OutputComparison().compute()
    assert math.isnan(empty["max_abs_diff"]) and empty["outputs"] == {}
