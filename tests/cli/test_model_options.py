"""--input-shape (repeatable, named), --task and --model on model commands (issue 10's CLI half)."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from prunequant.cli.argtypes import parse_named_shape
from prunequant.cli.common import example_input, shape_spec
from prunequant.cli.main import main
from prunequant.errors import ConfigError


def test_shapes_parse_commas_x_and_names() -> None:
    assert parse_named_shape("3,32,32") == (None, (3, 32, 32))
    assert parse_named_shape("image=3x64x64") == ("image", (3, 64, 64))
    with pytest.raises(argparse.ArgumentTypeError):
        parse_named_shape("3 x=1x2")


def test_one_several_and_named_inputs() -> None:
    assert shape_spec([(None, (3, 8, 8))]) == [3, 8, 8]
    assert shape_spec([(None, (3, 8, 8)), (None, (1, 8, 8))]) == [[3, 8, 8], [1, 8, 8]]
    named = shape_spec([("image", (3, 8, 8)), ("depth", (1, 8, 8))])
    assert named == {"image": [3, 8, 8], "depth": [1, 8, 8]}
    assert example_input({"input_shape": [3, 8, 8]}, 2).shape == (2, 3, 8, 8)
    pair = example_input({"input_shape": [[3, 8, 8], [1, 8, 8]]}, 2)
    assert isinstance(pair, tuple) and pair[1].shape == (2, 1, 8, 8)
    inputs = example_input({"input_shape": named}, 4)
    assert list(inputs) == ["image", "depth"] and inputs["depth"].shape == (4, 1, 8, 8)
    with pytest.raises(ConfigError, match="repeat"):
        shape_spec([("a", (1,)), ("a", (2,))])




def test_eval_takes_task_and_model(tmp_path, capsys) -> None:
    from prunequant.models import build, save_checkpoint

    model = build("small_cnn", num_classes=10, in_channels=3, input_size=32, width=4)
    torch.save(model.state_dict(), tmp_path / "sd.pt")
    argv = [
        "eval",
        "--checkpoint",
        str(tmp_path / "sd.pt"),
        "--model",
        "small_cnn",
        "--model-kwargs",
        '{"width": 4}',
        "--task",
        "classification",
        "--dataset",
        "synthetic",
        "--limit",
        "32",
        "--json",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    result = json.loads(capsys.readouterr().out)
    assert 0.0 <= result["top1"] <= 1.0 and result["n"] > 0
    save_checkpoint(model, tmp_path / "ck.pt")


def test_a_two_input_forward_error_names_the_model_and_every_input() -> None:
    from prunequant.cli.boundary import classify
    from prunequant.tasks import run_model

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Conv2d(3, 4, 3)
            self.b = torch.nn.Conv2d(1, 4, 3)

        def forward(self, image, depth):
            return self.a(image) + self.b(depth)

    inputs = example_input({"input_shape": {"image": [3, 8, 8], "depth": [2, 8, 8]}}, 2)
    try:
        run_model(Net(), inputs)
    except RuntimeError as exc:
        code, line = classify(exc)
    assert code == 2 and line.startswith(
        "model Net failed in its forward pass on inputs {image: 2x3x8x8, depth: 2x2x8x8}"
    )
    assert "in layer 'b' Conv2d, given 2x2x8x8" in line and "\n" not in line


def test_prune_and_bench_a_two_input_user_model(tmp_path, monkeypatch, capsys) -> None:
    from pathlib import Path

    examples = Path(__file__).resolve().parents[2] / "examples"
    monkeypatch.syspath_prepend(str(examples))
    from depth_task import DepthNet

    weights = tmp_path / "depth.pt"
    torch.save(DepthNet(width=8).state_dict(), weights)  # a plain state_dict of the user architecture
    shapes = ["--input-shape", "3,8,8", "--input-shape", "1,8,8"]
    model = ["--model", "depth_task:DepthNet", "--model-kwargs", '{"width": 8}']
    assert main(["prune", "--method", "channel", "--amount", "0.5", *model, *shapes, "--json"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert pruned["params_after"] < pruned["params_before"] and pruned["skipped_layers"] == []
    argv = ["bench", str(weights), *model, *shapes, "--batch", "1", "--rounds", "1", "--repeats", "1"]
    assert main([*argv, "--threads", "1", "--no-memory", "--no-reexec", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "classification" and report["rows"][0]["ratio_vs_first"] == 1.0
