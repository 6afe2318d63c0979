"""`prunequant prune --method magnitude`: the --json contract, outputs, sweeps and one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from prunequant.cli.main import main
from prunequant.export.storage import load_compressed
from prunequant.models import build, load_checkpoint, save_checkpoint
from prunequant.pruning.unstructured import sparsity_report

DATA = ["--dataset", "synthetic", "--limit", "96", "--batch-size", "32"]


@pytest.fixture
def base(tmp_path):
    torch.manual_seed(0)
    model = build("lenet5", num_classes=10, in_channels=3, input_size=32)
    return save_checkpoint(model, tmp_path / "base.pt", dataset="synthetic", metrics={"top1": 0.5})


def run_json(capsys, argv):
    code = main(["prune", "--method", "magnitude", *argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_json_contract_and_checkpoint_output(capsys, base, tmp_path):
    out = tmp_path / "pruned.pt"
    result = run_json(
        capsys, ["--checkpoint", str(base), "--amount", "0.3", "--scope", "layer", "-o", str(out)]
    )
    assert result["sparsity"] == pytest.approx(0.3, abs=1e-3) and result["output"] == str(out)
    assert result["layers"]["conv1.weight"] == pytest.approx(135 / 450)  # round(0.3 * 450)
    assert result["accuracy_before"] is None and result["compressed_bytes"] < result["dense_bytes"]
    model, meta = load_checkpoint(out)
    assert meta["pruning"]["scope"] == "layer" and meta["unpruned_metrics"] == {"top1": 0.5}
    assert sparsity_report(model).layers == pytest.approx(result["layers"])


def test_finetune_with_dataset_writes_the_sparse_container(capsys, base, tmp_path):
    out = tmp_path / "pruned.pqz"
    argv = [
        "--checkpoint",
        str(base),
        *DATA,
        "--amount",
        "0.5",
        "--finetune-epochs",
        "1",
        "--refine-epochs",
        "1",
    ]
    result = run_json(capsys, [*argv, "--keep-first-last", "--schedule", "oneshot", "-o", str(out)])
    assert 0 <= result["accuracy_before"] <= 1 and 0 <= result["accuracy_after"] <= 1
    assert result["kept"] == ["conv1", "fc3"] and result["layers"].keys() == {
        "conv2.weight",
        "fc1.weight",
        "fc2.weight",
    }
    model, meta = load_compressed(out)
    report = sparsity_report(model)
    assert report.layers["conv1.weight"] == 0.0 and report.layers["fc3.weight"] == 0.0
    assert {name: report.layers[name] for name in result["layers"]} == pytest.approx(result["layers"])
    assert result["pruned"] == round(0.5 * result["total"])
    assert meta["metrics"] == {"top1": result["accuracy_after"]}
    assert out.stat().st_size == result["output_bytes"] == pytest.approx(result["compressed_bytes"], abs=2000)


@pytest.mark.parametrize("amount", ["1.5", "nan", "-0.2", "1"])
def test_bad_amount_exits_2_with_one_line_and_no_file(capsys, base, tmp_path, amount):
    out = tmp_path / "never.pt"
    code = main(
        [
            "prune",
            "--method",
            "magnitude",
            "--checkpoint",
            str(base),
            "--amount",
            amount,
            "-o",
            str(out),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and not out.exists()
    assert captured.err.count("\n") == 1 and "--amount must be in [0, 1)" in captured.err


def test_sweep_writes_table_and_plot(capsys, base, tmp_path):
    result = run_json(
        capsys,
        [*["--checkpoint", str(base), *DATA, "--amounts", "0,0.5"], "--sweep-dir", str(tmp_path / "sw")]
        + ["--latency-rounds", "0"],
    )
    assert [(r["scope"], r["mode"], r["amount"]) for r in result["rows"]] == [
        ("global", "post", 0.0),
        ("global", "post", 0.5),
        ("layer", "post", 0.0),
        ("layer", "post", 0.5),
    ]
    assert result["rows"][0]["top1"] == result["rows"][0]["baseline_top1"]
    for kind in ("csv", "md", "png"):
        assert (tmp_path / "sw" / f"sweep.{kind}").stat().st_size > 0
    assert (tmp_path / "sw" / "sweep.csv").read_text().count("\n") == 5


def test_dynamic_mode_reports_history(capsys, base):
    result = run_json(
        capsys,
        ["--checkpoint", str(base), *DATA, "--dynamic", "--budget", "0.5", "--dynamic-step", "0.5"],
    )
    history = result["dynamic"]["history"]
    assert history and history[0]["sparsity"] == 0.5
    assert result["dynamic"]["sparsity"] == max([0.0] + [h["sparsity"] for h in history if h["accepted"]])
