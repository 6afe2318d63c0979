"""An op left float between a DequantizeLinear and a QuantizeLinear in the int8 graph (an activation with no
integer kernel in onnxruntime: Hardswish, Tanh) is named by its module, with its op types, in the export
result, its JSON, the file's metadata, the summary and the export warning."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from torch import nn

from prunequant.export.coverage import FLOAT_OPS_KEY

from ..quantization.int8_roundtrip import roundtrip
from ..quantization.test_activation_quantizers import SHAPE, ConvAct


class ConvHardswish(nn.Module):
    """conv-Hardswish-conv-ReLU-conv-ReLU: the Hardswish sits between two integer convs, no pooling."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.Hardswish()
        self.conv2, self.relu, self.conv3 = nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv3(self.relu(self.conv2(self.act(self.conv1(x))))))


def test_a_float_hardswish_is_named_in_result_json_metadata_summary_and_warning(tmp_path):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="act: onnxruntime has no integer HardSigmoid / Mul kernel"):
        trip = roundtrip(ConvHardswish(), SHAPE, tmp_path / "hswish.onnx", warn=True)
    result = trip.result
    assert list(result.float_ops) == ["act"] and "runs in float" in result.float_ops["act"]
    assert result.float_layers == {} and result.float_norms == {}
    assert result.layers == "int8: all 3 layers; 1 op float"
    assert result.to_dict()["float_ops"] == result.float_ops
    meta = {entry.key: entry.value for entry in onnx.load(result.output).metadata_props}
    assert json.loads(meta[FLOAT_OPS_KEY]) == result.float_ops
    assert trip.max_diff < 0.02


def test_integer_activations_are_not_listed(tmp_path):
    torch.manual_seed(0)
    model = ConvHardswish()
    model.act = nn.ReLU()
    result = roundtrip(model, SHAPE, tmp_path / "relu.onnx").result
    assert result.float_ops == {} and result.layers == "int8: all 3 layers"


def test_a_pool_reading_a_dequantized_tensor_is_named(tmp_path):
    """ConvAct pools the last activation's dequantized output before its Linear: onnxruntime pools in
    float."""
    torch.manual_seed(0)
    result = roundtrip(ConvAct(nn.ReLU), SHAPE, tmp_path / "pool.onnx").result
    assert list(result.float_ops) == ["GlobalAveragePool"]
