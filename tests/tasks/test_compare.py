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
    assert first["mean_rel_diff"] == pytest.approx(1.5 / 6)  # sum|diff| 1.5 over sum|ref| 2 * 3
    assert second["max_abs_diff"] == 1.0 and second["mean_abs_diff"] == pytest.approx(0.5)
    assert result["max_abs_diff"] == 1.0 and result["mean_abs_diff"] == pytest.approx(2.5 / 6)


def test_identical_outputs_and_zero_reference():
    comparison = OutputComparison()
    zeros = {"a": torch.zeros(3)}
    comparison.update(zeros, {"a": torch.zeros(3)})
    result = comparison.compute()
    assert result["max_abs_diff"] == 0.0 and result["mean_rel_diff"] == 0.0
    assert list(result["outputs"]) == ["output.a"]
    comparison.update(zeros, {"a": torch.ones(3)})
    assert comparison.compute()["mean_rel_diff"] == math.inf


def test_relative_error_ignores_near_zero_reference_elements():
    """A still background (flow ~0) must not dominate: 1e-3 off on a 1e-9 value is not a 1e6 error."""
    comparison = OutputComparison()
    comparison.update(torch.tensor([1e-9, 10.0]), torch.tensor([1e-3, 10.0]))
    assert comparison.compute()["mean_rel_diff"] == pytest.approx(1e-4, rel=1e-3)


def test_structure_mismatch_and_empty():
    with pytest.raises(ModelError, match="differ in structure"):
        OutputComparison().update(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ModelError, match="tuple"):
        OutputComparison().update((torch.zeros(1), torch.zeros(1)), torch.zeros(1))
    empty = OutputComparison().compute()
    assert math.isnan(empty["max_abs_diff"]) and empty["outputs"] == {}
