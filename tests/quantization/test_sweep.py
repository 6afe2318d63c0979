"""sweep_quantization and its outputs (seed 000 Figs. 1-2 / Table II style)."""

import csv

import pytest

from prunequant.errors import ConfigError
from prunequant.quantization import SWEEP_COLUMNS, QuantConfig, parse_bits, sweep_quantization
from prunequant.quantization.sweep_report import write_quant_sweep
from prunequant.training import TrainConfig, evaluate


def test_parse_bits():
    assert parse_bits(["16", " 8", "FP16", "bf16", 4]) == [16, 8, "fp16", "bf16", 4]
    for bad in (["1"], ["17"], ["int8"], []):
        with pytest.raises(ConfigError):
            parse_bits(bad)


def test_sweep_rows_outputs_and_the_untouched_model(tiny_model, blob_loaders, tmp_path):
    train, val = blob_loaders
    baseline = evaluate(tiny_model, val).top1
    packed = []
    rows = sweep_quantization(
        tiny_model,
        train,
        val,
        [8, 2, "bf16"],
        config=QuantConfig(a_bits=None),
        train_config=TrainConfig(epochs=1, lr=0.01, max_batches_per_epoch=2),
        refine_epochs=0,
        calib_batches=1,
        pack=lambda qmodel, label: packed.append(label) or 100,
    )
    assert [(r["bits"], r["mode"]) for r in rows] == [
        ("fp32", "baseline"),
        ("8", "post"),
        ("8", "aware"),
        ("2", "post"),
        ("2", "aware"),
        ("bf16", "post"),
    ]
    assert all(tuple(row) == SWEEP_COLUMNS for row in rows)
    assert rows[0]["top1"] == baseline == evaluate(tiny_model, val).top1
    nonzero = sum(int(p.count_nonzero()) for p in tiny_model.parameters())
    assert rows[0]["weight_mb"] == pytest.approx(32 * nonzero / 1e6)
    assert rows[1]["zero_share"] < rows[3]["zero_share"]  # 2 bits round far more weights to zero
    assert rows[3]["weight_mb"] < rows[1]["weight_mb"] < rows[0]["weight_mb"]
    # a_bits=None keeps activations float32: only their ReLU sparsity moves
    assert all(0.7 < row["activation_mb"] / rows[0]["activation_mb"] < 1.3 for row in rows)
    assert packed == ["post-w8", "aware-w8", "post-w2", "aware-w2"] and rows[5]["packed_bytes"] is None
    paths = write_quant_sweep(rows, tmp_path / "sweep")
    with open(paths["csv"]) as handle:
        assert [row["bits"] for row in csv.DictReader(handle)] == ["fp32", "8", "8", "2", "2", "bf16"]
    assert (tmp_path / "sweep" / "quant_sweep.png").stat().st_size > 1000
    assert "| bits | mode | top1 |" in (tmp_path / "sweep" / "quant_sweep.md").read_text()


def test_aware_needs_a_train_config(tiny_model, blob_loaders):
    with pytest.raises(ConfigError, match="train_config"):
        sweep_quantization(tiny_model, *blob_loaders, [8])
    with pytest.raises(ConfigError, match="modes"):
        sweep_quantization(tiny_model, *blob_loaders, [8], modes=("after",))


def test_sweep_columns_follow_a_lower_is_better_task(dense_model, dense_loaders, regression_task, tmp_path):
    from prunequant.quantization.sweep import sweep_columns

    train, val = dense_loaders
    rows = sweep_quantization(
        dense_model,
        train,
        val,
        [8, 2],
        config=QuantConfig(a_bits=8),
        train_config=TrainConfig(epochs=1, lr=0.005, optimizer="adam", max_batches_per_epoch=2),
        refine_epochs=0,
        calib_batches=1,
        task=regression_task,
    )
    assert all(tuple(row) == sweep_columns(regression_task) for row in rows)
    assert "top1" not in rows[0] and rows[0]["mse"] == rows[0]["baseline_mse"]
    assert rows[0]["mse"] == pytest.approx(evaluate(dense_model, val, regression_task).mse)
    assert rows[3]["mse"] > rows[1]["mse"]  # 2 bits: a larger error than 8 bits
    assert all(row["pd"] is None for row in rows)  # PD needs an accuracy; the error is not one
    write_quant_sweep(rows, tmp_path, task=regression_task)
    assert "| bits | mode | mse | baseline_mse |" in (tmp_path / "quant_sweep.md").read_text()
