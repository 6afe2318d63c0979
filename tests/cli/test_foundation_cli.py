"""The CLI contract of train / eval / profile: one JSON object with --json, one error line and exit 2."""

import json

import pytest

from prunequant.cli.main import main
from prunequant.models import load_checkpoint


def run_json(capsys, argv):
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_profile_json_contract(capsys):
    result = run_json(
        capsys, ["profile", "--model", "resnet20", "--input-shape", "3,32,32", "--repeats", "2"]
    )
    assert set(result) == {"total", "groups", "layers"}
    total = result["total"]
    for key in ("params", "nonzero_params", "macs", "flops", "activation_bytes", "latency_ms"):
        assert key in total
    assert total["params"] == pytest.approx(0.27e6, rel=0.02)
    assert [g["name"] for g in result["groups"]][:2] == ["conv1", "bn1"]


def test_train_then_eval_and_profile_checkpoint(tmp_path, capsys):
    ckpt = tmp_path / "m.pt"
    data = ["--dataset", "synthetic"]  # 512 training and 128 test images
    trained = run_json(
        capsys, ["train", "--model", "lenet5", *data, "--epochs", "1", "-o", str(ckpt), "--quiet"]
    )
    assert ckpt.exists() and trained["output"] == str(ckpt)
    evaluated = run_json(capsys, ["eval", "--checkpoint", str(ckpt), *data])
    assert set(evaluated) == {"top1", "top5", "loss", "n", "warnings"}
    assert evaluated["top1"] == pytest.approx(trained["top1"]) and evaluated["n"] == 128
    assert run_json(capsys, ["eval", "--checkpoint", str(ckpt), *data, "--limit", "50"])["n"] == 50
    profiled = run_json(capsys, ["profile", "--checkpoint", str(ckpt), "--no-latency"])
    model, _ = load_checkpoint(ckpt)
    assert profiled["total"]["params"] == sum(p.numel() for p in model.parameters())
    assert profiled["total"]["latency_ms"] is None


def test_same_seed_same_numbers(tmp_path, capsys):
    args = [
        "train",
        "--model",
        "lenet5",
        "--dataset",
        "synthetic",
        "--limit",
        "128",
        "--epochs",
        "1",
        "--seed",
        "5",
    ]
    first = run_json(capsys, [*args, "-o", str(tmp_path / "a.pt")])
    second = run_json(capsys, [*args, "-o", str(tmp_path / "b.pt")])
    assert first["history"] == second["history"]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["profile", "--model", "nosuchnet", "--input-shape", "3,32,32"], "nosuchnet"),
        (["profile", "--model", "resnet20"], "--input-shape"),
        (["profile", "--model", "resnet20", "--input-shape", "3,x"], "3,x"),
        (["eval", "--checkpoint", "/nonexistent/model.pt", "--dataset", "synthetic"], "model.pt"),
        (["train", "--model", "lenet5", "--dataset", "nosuchdata", "-o", "x.pt"], "nosuchdata"),
        (["train", "--model", "lenet5", "--dataset", "synthetic", "--lr", "nan", "-o", "x.pt"], "lr"),
        (["profile", "--bogus-flag"], "--bogus-flag"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, needle, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse usage errors
        code = exit_.code
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert not (tmp_path / "x.pt").exists()


def test_corrupt_checkpoint_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    assert main(["profile", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.pt" in err[0]
