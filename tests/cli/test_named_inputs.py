"""quantize and export take several named inputs (--input-shape NAME=CxHxW, repeated); prunequant's own
packed .pqz loads in eval."""

from __future__ import annotations

import json

import onnx
import pytest

from prunequant.cli.main import main

MODULE = """
import torch
from torch import nn

from prunequant.tasks import ClassificationTask


def _two_inputs(batch):
    images, labels = batch
    return {"image": images, "sparse": images[:, :1]}, labels


def task():
    return ClassificationTask(transform_fn=_two_inputs)


class Net(nn.Module):
    def __init__(self, num_classes=10, **_):
        super().__init__()
        self.image = nn.Conv2d(3, 8, 3, padding=1)
        self.sparse = nn.Conv2d(1, 8, 3, padding=1)
        self.head = nn.Linear(16, num_classes)

    def forward(self, image, sparse):
        features = torch.cat([torch.relu(self.image(image)), torch.relu(self.sparse(sparse))], 1)
        return self.head(features.mean((2, 3)))
"""
SHAPES = ["--input-shape", "image=3x32x32", "--input-shape", "sparse=1x32x32"]
MODEL = ["--model", "twoin:Net", "--task", "twoin:task"]
DATA = ["--dataset", "synthetic", "--limit", "64", "--batch-size", "32"]


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "twoin.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _json(capsys, argv: list[str]) -> dict:
    code = main([*argv, "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_quantize_then_export_a_two_input_model(folder, capsys) -> None:
    q, packed = folder / "q.pt", folder / "q.pqz"
    argv = ["quantize", *MODEL, *SHAPES, *DATA, "--calib-batches", "1", "-o", q, "--packed", packed]
    result = _json(capsys, list(map(str, argv)))
    assert result["w_bits"] == 8 and result["packed_bytes"] > 0
    onnx_file = folder / "q.onnx"
    _json(capsys, ["export", "--checkpoint", str(q), "--model", "twoin:Net", "--int8", "-o", str(onnx_file)])
    graph = onnx.load(str(onnx_file)).graph
    assert [value.name for value in graph.input] == ["image", "sparse"]
    shapes = [[d.dim_value for d in v.type.tensor_type.shape.dim][1:] for v in graph.input]
    assert shapes == [[3, 32, 32], [1, 32, 32]]
    # the packed container is recognised by eval and scores like the fake-quant checkpoint
    scored = [
        _json(capsys, ["eval", "--checkpoint", str(path), *MODEL, *DATA])["top1"] for path in (q, packed)
    ]
    assert scored[0] == pytest.approx(scored[1])


def test_export_fp32_with_named_inputs_needs_no_data(folder, capsys) -> None:
    out = folder / "f.onnx"
    result = _json(capsys, ["export", "--model", "twoin:Net", *SHAPES, "-o", str(out)])
    assert result["precision"] == "fp32"
    assert [value.name for value in onnx.load(str(out)).graph.input] == ["image", "sparse"]
