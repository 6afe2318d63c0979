"""sweep_unstructured rows and their CSV / markdown / plot outputs."""

from __future__ import annotations

import copy

import pytest
import torch

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured import get_masks, sweep_unstructured, write_sweep
from prunequant.pruning.unstructured.sweep import sweep_columns
from prunequant.sweep_output import markdown_table
from prunequant.training import TrainConfig, Trainer


def test_rows_per_scope_mode_and_amount(tiny_model, blob_loaders, tmp_path):
    train, val = blob_loaders
    before = copy.deepcopy(tiny_model.state_dict())
    rows = sweep_unstructured(
        tiny_model,
        val,
        [0.0, 0.5],
        train_loader=train,
        val_loader=val,
        finetune=TrainConfig(epochs=1, lr=0.02, max_batches_per_epoch=2),
        example_input=torch.randn(4, 1, 8, 8),
        latency_rounds=1,
    )
    assert [(r["scope"], r["mode"], r["amount"]) for r in rows] == [
        (scope, mode, amount)
        for scope in ("global", "layer")
        for mode in ("post", "aware")
        for amount in (0.0, 0.5)
    ]
    post = [r for r in rows if r["mode"] == "post"]
    assert post[0]["top1"] == post[0]["baseline_top1"] and post[0]["sparsity"] == 0.0
    assert post[0]["nonzero_params"] - post[1]["nonzero_params"] == 644  # round(0.5 * 1288) weights zeroed
    assert post[1]["compressed_bytes"] < post[0]["compressed_bytes"]
    assert all(0 < r["latency_p10_ms"] <= r["latency_ms"] and r["params"] == 1364 for r in rows)
    assert not get_masks(tiny_model)
    assert all(
        torch.equal(v, tiny_model.state_dict()[k]) for k, v in before.items()
    )  # the input is untouched

    paths = write_sweep(rows, tmp_path / "out")
    assert sorted(paths) == ["csv", "md", "png"]
    table = (tmp_path / "out" / "sweep.md").read_text().splitlines()
    assert table[0].startswith("| scope | mode | amount | sparsity | top1 |") and len(table) == 2 + 8
    assert (tmp_path / "out" / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_markdown_cells_and_bad_amounts(tiny_model, blob_loaders):
    assert markdown_table([{"a": 0.5, "b": 123456, "c": None, "d": 12.25}]).splitlines()[2] == (
        "| 0.5000 | 123,456 | - | 12.2 |"
    )
    with pytest.raises(ConfigError, match="amount must be in"):
        sweep_unstructured(tiny_model, blob_loaders[1], [0.5, 1.2])
    with pytest.raises(ConfigError, match="at least one amount"):
        sweep_unstructured(tiny_model, blob_loaders[1], [])


def test_sweep_reports_the_task_metrics_of_a_two_input_model(
    two_input_model, flow_loaders, regression_task, tmp_path
):
    train, val = flow_loaders
    config = TrainConfig(epochs=3, lr=0.02, optimizer="adam", weight_decay=0.0)
    Trainer(two_input_model, train, val, config, task=regression_task).fit()
    example = (torch.randn(2, 3, 8, 8), torch.randn(2, 1, 8, 8))
    rows = sweep_unstructured(
        two_input_model,
        val,
        [0.0, 0.9],
        scopes=("global",),
        train_loader=train,
        val_loader=val,
        finetune=TrainConfig(epochs=1, lr=0.01, optimizer="adam", max_batches_per_epoch=2),
        example_input=example,
        latency_rounds=1,
        task=regression_task,
    )
    assert tuple(rows[0]) == sweep_columns(regression_task)
    assert {"mse", "mae", "baseline_mse"} <= set(rows[0]) and "top1" not in rows[0]
    post = [r for r in rows if r["mode"] == "post"]
    assert post[0]["mse"] == pytest.approx(post[0]["baseline_mse"])
    assert post[1]["mse"] > post[0]["mse"]  # 90 % of the weights gone: a larger error
    assert all(r["latency_ms"] > 0 for r in rows)
    write_sweep(rows, tmp_path, task=regression_task)
    assert (tmp_path / "sweep.md").read_text().startswith("| scope | mode | amount | sparsity | mse | mae |")
    assert (tmp_path / "sweep.png").read_bytes()[:4] == b"\x89PNG"
