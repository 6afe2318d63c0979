"""Quantization sweeps: --mode ptq runs no aware training; an interrupted sweep leaves partial files."""

from __future__ import annotations

import json

import pytest

import prunequant.quantization.sweep as sweep_module
from prunequant.cli.main import main
from prunequant.quantization import QuantConfig, sweep_quantization
from prunequant.training import TrainConfig

MODEL = ["--model", "lenet5", "--input-shape", "3,32,32", "--dataset", "synthetic", "--limit", "64"]


@pytest.fixture
def qat_calls(monkeypatch):
    calls = []
    real = sweep_module.quantization_aware_finetune

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(sweep_module, "quantization_aware_finetune", spy)
    return calls


def test_cli_sweep_with_mode_ptq_runs_no_aware_training(tmp_path, capsys, qat_calls):
    argv = ["quantize", *MODEL, "--bits", "8,4", "--mode", "ptq", "--sweep-dir", str(tmp_path)]
    assert main([*argv, "--calib-batches", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(row["bits"], row["mode"]) for row in rows] == [
        ("fp32", "baseline"),
        ("8", "post"),
        ("4", "post"),
    ]
    assert qat_calls == []
    assert "partial" not in (tmp_path / "quant_sweep.md").read_text()


def test_cli_sweep_without_mode_still_runs_both(capsys, qat_calls):
    argv = ["quantize", *MODEL, "--bits", "8", "--calib-batches", "1", "--epochs", "1", "--max-batches", "1"]
    assert main([*argv, "--refine-epochs", "0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [row["mode"] for row in rows] == ["baseline", "post", "aware"] and qat_calls == [1]


def test_interrupted_quant_sweep_leaves_valid_partial_files(tiny_model, blob_loaders, tmp_path, monkeypatch):
    train, val = blob_loaders

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_module, "quantization_aware_finetune", interrupt)
    with pytest.raises(KeyboardInterrupt):
        sweep_quantization(
            tiny_model,
            train,
            val,
            [8, 4],
            config=QuantConfig(a_bits=None),
            train_config=TrainConfig(epochs=1),
            calib_batches=1,
            sweep_dir=tmp_path,
        )
    csv_lines = (tmp_path / "quant_sweep.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in csv_lines[1:]] == [["fp32", "baseline"], ["8", "post"]]
    assert (tmp_path / "quant_sweep.md").read_text().startswith("partial: 2 of 5 levels")
    assert (tmp_path / "quant_sweep.png").stat().st_size > 1000
