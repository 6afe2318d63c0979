"""`prunequant export` and `prunequant bench`: JSON contracts, one-line errors with exit code 2, re-exec."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from prunequant.cli.main import main
from prunequant.data import load_dataset, make_loaders
from prunequant.export.bench import MALLOC_ENV
from prunequant.models import build, save_checkpoint
from prunequant.quantization import QuantConfig, quantize

from .conftest import settle_batchnorm

DATA = ["--dataset", "synthetic", "--limit", "256", "--batch-size", "64"]
ROW_KEYS = {
    "model",
    "runtime",
    "batch",
    "median_ms",
    "p90_ms",
    "ratio_vs_first",
    "bytes",
    "peak_rss_delta_mb",
    "p10_ms",
    "speedup_p10",
    "speedup_p90",
    "noisy",
    "int8_slower",
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """(float, PTQ 8/8) checkpoints of a width-4 small_cnn for the synthetic set's 3x32x32, 10 classes."""
    folder = tmp_path_factory.mktemp("cli")
    model = settle_batchnorm(build("small_cnn", width=4), (3, 32, 32))
    calibration = make_loaders(load_dataset("synthetic", limit=256), 64).train
    quantized = quantize(model, QuantConfig(), calibration, calib_batches=2)
    return save_checkpoint(model, folder / "float.pt"), save_checkpoint(quantized, folder / "ptq.pt")


def run_json(capsys, argv: list[str]) -> dict:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def run_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    return err.strip()


def test_export_fp32_contract_without_parity(capsys, tmp_path):
    target = tmp_path / "m.onnx"
    result = run_json(
        capsys, ["export", "--model", "small_cnn", "--input-shape", "3,32,32", "-o", str(target)]
    )
    assert result == {
        "format": "onnx",
        "output": str(target),
        "bytes": target.stat().st_size,
        "precision": "fp32",
        "method": "fp32",
        "warnings": [],
    }


def test_export_with_dataset_reports_parity(capsys, checkpoints, tmp_path):
    result = run_json(
        capsys, ["export", "--checkpoint", str(checkpoints[0]), "-o", str(tmp_path / "m.onnx"), *DATA]
    )
    parity = result["parity"]
    assert {"agreement", "top1_torch", "top1_onnx", "max_abs_logit_diff"} <= set(parity)
    assert parity["agreement"] == 1.0 and parity["n"] == 64 and parity["max_abs_logit_diff"] < 1e-4


def test_export_int8_of_a_quantized_checkpoint_keeps_its_scales(capsys, checkpoints, tmp_path):
    argv = ["export", "--checkpoint", str(checkpoints[1]), "--int8", "-o", str(tmp_path / "q.onnx"), *DATA]
    result = run_json(capsys, argv)
    assert (result["method"], result["precision"]) == ("ours", "int8")
    assert result["parity"]["agreement"] >= 0.99
    assert result["float_ops"] == {} and result["layers"] == "int8: all 7 layers"  # the pool is integer too


def test_export_int8_of_a_float_checkpoint_with_data_uses_onnxruntime(capsys, checkpoints, tmp_path):
    argv = ["export", "--checkpoint", str(checkpoints[0]), "--int8", "-o", str(tmp_path / "o.onnx"), *DATA]
    result = run_json(capsys, [*argv, "--calib-batches", "2"])
    assert (result["method"], result["precision"]) == ("ort", "int8")


def test_export_errors_are_one_line(capsys, checkpoints, tmp_path):
    out = str(tmp_path / "x.onnx")
    assert run_error(capsys, ["export", "--checkpoint", str(checkpoints[0]), "--int8", "-o", out]) == (
        "prunequant export: error: checkpoint is not quantized; pass --dataset to calibrate with "
        "--int8-method ort or quantize first with `prunequant quantize`"
    )
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    assert "is not a readable checkpoint" in run_error(
        capsys, ["export", "--checkpoint", str(broken), "-o", out]
    )
    assert "add --int8" in run_error(capsys, ["export", "--checkpoint", str(checkpoints[1]), "-o", out])
    argv = ["export", "--checkpoint", str(checkpoints[1]), "--int8", "--int8-method", "ort", "-o", out]
    assert "pass --dataset" in run_error(capsys, argv)
    assert not (tmp_path / "x.onnx").exists()


@pytest.fixture(scope="module")
def onnx_file(checkpoints, tmp_path_factory):
    target = tmp_path_factory.mktemp("bench") / "float.onnx"
    assert main(["export", "--checkpoint", str(checkpoints[0]), "-o", str(target), "--quiet"]) == 0
    return target


def test_bench_json_contract(capsys, checkpoints, onnx_file):
    argv = ["bench", str(checkpoints[0]), str(onnx_file), "--batch", "1,2", "--threads", "1"]
    result = run_json(capsys, [*argv, "--rounds", "1", "--repeats", "2", "--no-memory", "--no-reexec"])
    rows = result["rows"]
    assert [(row["runtime"], row["batch"]) for row in rows] == [
        ("torch", 1),
        ("onnxruntime", 1),
        ("torch", 2),
        ("onnxruntime", 2),
    ]
    assert all(set(row) == ROW_KEYS for row in rows)
    assert rows[0]["ratio_vs_first"] == rows[2]["ratio_vs_first"] == 1.0
    assert rows[1]["bytes"] == onnx_file.stat().st_size
    assert result["threads"] == 1 and isinstance(result["malloc_tuned"], bool)
    assert result["threads_used"] == 1 and result["threads_requested"] == 1
    assert isinstance(result["oversubscribed"], bool) and result["thread_reason"]
    assert isinstance(result["noisy"], bool)


def test_bench_restarts_itself_with_tuned_malloc(onnx_file):
    env = {key: value for key, value in os.environ.items() if key not in MALLOC_ENV}
    argv = ["bench", str(onnx_file), "--batch", "1", "--threads", "1", "--rounds", "1", "--repeats", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "prunequant.cli.main", *argv, "--no-memory", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["malloc_tuned"] is True


def test_bench_error_is_one_line(capsys, tmp_path):
    assert "does not exist" in run_error(capsys, ["bench", str(tmp_path / "gone.onnx"), "--no-reexec"])
