"""`prunequant quantize`: the --json contract, written files, sweeps, and one-line errors with exit 2."""

import json
from pathlib import Path

import pytest
import torch

from prunequant.cli.main import main
from prunequant.export.storage import load_compressed
from prunequant.models import load_checkpoint
from prunequant.quantization import QuantConv2d

MODEL = ["--model", "lenet5", "--input-shape", "3,32,32", "--dataset", "synthetic", "--limit", "128"]


def run_json(capsys, argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_ptq_json_contract_and_outputs(tmp_path, capsys):
    out, packed = tmp_path / "q.pt", tmp_path / "q.pqz"
    args = ["quantize", *MODEL, "--w-bits", "6", "--a-bits", "8", "--calib-batches", "1", "--pow2-scales"]
    result = run_json(capsys, [*args, "--layer-bits", "fc3=w8", "-o", str(out), "--packed", str(packed)])
    expected = {"w_bits", "a_bits", "zero_share", "weight_mb", "activation_mb", "pd", "top1", "output"}
    assert expected <= set(result)
    assert (result["w_bits"], result["a_bits"], result["mode"], result["per_channel"]) == (6, 8, "ptq", True)
    assert result["pow2_scale"] and 0 <= result["zero_share"] < 1 and result["pd"] > 0
    assert result["output"] == str(out) and result["packed_bytes"] == packed.stat().st_size
    model, meta = load_checkpoint(out)
    assert isinstance(model.conv1, QuantConv2d) and model.fc3.weight_quantizer.bits == 8
    assert meta["quantization"]["w_bits"] == 6 and meta["metrics"]["top1"] == result["top1"]
    unpacked, _ = load_compressed(packed)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(unpacked(x), model(x))


def test_qat_mode(capsys):
    args = ["quantize", *MODEL, "--mode", "qat", "--w-bits", "4", "--a-bits", "none", "--epochs", "1"]
    result = run_json(capsys, [*args, "--max-batches", "2", "--refine-epochs", "1", "--calibration", "ema"])
    assert (result["mode"], result["w_bits"], result["a_bits"]) == ("qat", 4, None)
    assert result["output"] is None and result["packed_bytes"] is None


def test_sweep_writes_table_plot_and_packed_files(tmp_path, capsys):
    args = ["quantize", *MODEL, "--bits", "8,fp16", "--sweep-dir", str(tmp_path), "--calib-batches", "1"]
    result = run_json(capsys, [*args, "--epochs", "1", "--max-batches", "1", "--refine-epochs", "0"])
    assert [(row["bits"], row["mode"]) for row in result["rows"]] == [
        ("fp32", "baseline"),
        ("8", "post"),
        ("8", "aware"),
        ("fp16", "post"),
    ]
    assert {Path(path).suffix for path in result["outputs"].values()} == {".csv", ".md", ".png"}
    assert (tmp_path / "packed" / "post-w8.pqz").stat().st_size == result["rows"][1]["packed_bytes"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--w-bits", "17"], "w_bits must be an integer in 2..16"),
        (["--w-bits", "1"], "w_bits must be an integer in 2..16"),
        (["--a-bits", "33"], "a_bits must be an integer in 2..16"),
        (["--bits", "8,17"], "bits must be an integer in 2..16"),
        (["--layer-bits", "fc3=w1"], "w_bits must be an integer in 2..16"),
    ],
)
def test_bad_bits_exit_2_with_one_line(capsys, extra, message):
    assert main(["quantize", *MODEL, *extra, "--json"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and message in err and err.count("\n") == 1


def test_malformed_layer_bits_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["quantize", *MODEL, "--layer-bits", "fc3=x4"])
    assert exit_info.value.code == 2 and "PATTERN=wBaB" in capsys.readouterr().err


def test_no_residuals_maps_to_quantize_residuals_false(tmp_path, capsys):
    out = tmp_path / "q.pt"
    args = ["quantize", "--model", "resnet20", "--input-shape", "3,32,32", "--dataset", "synthetic"]
    args += ["--limit", "64", "--calib-batches", "1", "--no-residuals", "-o", str(out)]
    result = run_json(capsys, args)
    assert result["quantize_residuals"] is False
    model, meta = load_checkpoint(out)
    assert meta["quantization"]["quantize_residuals"] is False
    assert type(model.layer1[0].bn2).__name__ == "BatchNorm2d"  # no quantizer after the branch-ending BN
