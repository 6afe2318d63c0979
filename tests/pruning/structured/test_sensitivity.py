"""Sensitivity scan (accuracy vs amount per group) and the per-group amounts chosen from it."""

from __future__ import annotations

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.pruning.structured import (
    SensitivityTable,
    amounts_from_table,
    prune_channels,
    sensitivity_scan,
)
from prunequant.training import evaluate

TABLE = SensitivityTable(
    amounts=(0.25, 0.5, 0.75),
    baseline=0.9,
    scores={"a": (0.9, 0.88, 0.5), "b": (0.85, 0.6, 0.4)},
    channels={"a": 16, "b": 16},
)


def test_amounts_reach_the_target_with_the_least_worst_drop():
    assert amounts_from_table(TABLE, 0.25) == {"a": 0.5, "b": 0.0}  # drop 0.02 suffices: mean 0.25
    assert amounts_from_table(TABLE, 0.375) == {"a": 0.5, "b": 0.25}  # needs b's 0.05 drop
    assert amounts_from_table(TABLE, 0.7) == {"a": 0.75, "b": 0.75}  # unreachable: the most the scan allows
    assert TABLE.markdown().splitlines()[2] == "| a | 16 | 90.00 | 88.00 | 50.00 |"


def test_scan_prunes_each_group_alone(tiny_model, blob_loaders):
    train, val = blob_loaders
    x = torch.randn(2, 1, 8, 8)
    table = sensitivity_scan(tiny_model, x, val, amounts=(0.5,))
    assert table.baseline == evaluate(tiny_model, val).top1
    assert set(table.scores) == {"conv1", "conv2"} and table.channels == {"conv1": 8, "conv2": 16}
    alone = prune_channels(tiny_model, x, 0.5, per_layer={"conv1": 0.5, "*": 0.0})
    assert table.scores["conv1"] == (evaluate(alone, val).top1,)


def test_sensitivity_allocation_needs_data_with_targets(tiny_model, blob_loaders):
    x = torch.randn(2, 1, 8, 8)
    with pytest.raises(ConfigError, match="needs a calib_loader whose batches carry targets"):
        prune_channels(tiny_model, x, 0.5, allocation="sensitivity")
    result = prune_channels(
        tiny_model, x, 0.5, allocation="sensitivity", calib_loader=blob_loaders[1], return_result=True
    )
    assert sum(p.kept for p in result.groups) < 24
