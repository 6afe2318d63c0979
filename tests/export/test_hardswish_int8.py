"""Hardswish and Hardsigmoid run as integer ops on onnxruntime: quantize() gates a Hardswish as
x * q(hardsigmoid(x)) (GatedHardswish), and the int8 export writes each HardSigmoid whose output a uint8 Q
of zero point 0 reads on at most [0, 1] as DQ -> Add(3) -> Q at 6x that scale, which onnxruntime fuses into
QLinearAdd (+ QLinearMul for the Hardswish). MobileNetV3's squeeze-excitation gates are such Hardsigmoids."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from prunequant.export.hardsigmoid_qdq import hardsigmoids_as_adds
from prunequant.models.checkpoint import load_checkpoint, save_checkpoint
from prunequant.quantization.gated_silu import GatedHardswish

from ..quantization.int8_roundtrip import roundtrip
from ..quantization.test_activation_quantizers import SHAPE, ConvAct


def test_hardswish_becomes_qlinear_add_and_qlinear_mul_matching_fake_quant(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(ConvAct(nn.Hardswish), SHAPE, tmp_path / "hswish.onnx")
    assert isinstance(trip.qmodel.act1.activation, GatedHardswish)
    assert (trip.ops.get("QLinearAdd", 0), trip.ops.get("QLinearMul", 0)) == (2, 2), trip.ops
    assert "HardSigmoid" not in trip.ops and "Mul" not in trip.ops
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 3 layers"
    assert trip.max_diff < 1e-3


class SqueezeExcite(nn.Module):
    """conv-ReLU, then MobileNetV3's gate: pool -> conv -> ReLU -> conv -> Hardsigmoid -> multiply (its
    product quantized by the ReLU6 after it), then a pooled Linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.relu = nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()
        self.fc1, self.fc2, self.gate = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1), nn.Hardsigmoid()
        self.head, self.clip = nn.Linear(8, 4), nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv(x))
        scale = self.gate(self.fc2(self.relu(self.fc1(nn.functional.adaptive_avg_pool2d(x, 1)))))
        pooled = nn.functional.adaptive_avg_pool2d(self.clip(x * scale), 1)
        return self.head(torch.flatten(pooled, 1))


def test_a_squeeze_excitation_gate_is_an_integer_add(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(SqueezeExcite(), SHAPE, tmp_path / "se.onnx")
    assert trip.ops.get("QLinearAdd", 0) == 1 and "HardSigmoid" not in trip.ops, trip.ops
    assert trip.result.float_ops == {} and trip.result.layers == "int8: all 4 layers"
    assert trip.max_diff < 1e-3


def qdq_hardsigmoid(scale: float, zero_point: int, dtype: int = TensorProto.UINT8) -> onnx.ModelProto:
    """x -> Q(1/32) -> DQ -> HardSigmoid -> Q(scale, zero_point) -> DQ: a float input's gate, alone."""
    grid = [numpy_helper.from_array(np.array(1 / 32, np.float32), "in_scale")]
    grid.append(numpy_helper.from_array(np.array(128, np.uint8), "in_zero"))
    zero = np.array(zero_point, np.uint8 if dtype == TensorProto.UINT8 else np.int8)
    grid += [
        numpy_helper.from_array(np.array(scale, np.float32), "scale"),
        numpy_helper.from_array(zero, "zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "in_scale", "in_zero"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "in_scale", "in_zero"], ["xd"]),
        helper.make_node("HardSigmoid", ["xd"], ["h"], alpha=1 / 6, beta=0.5),
        helper.make_node("QuantizeLinear", ["h", "scale", "zero"], ["hq"]),
        helper.make_node("DequantizeLinear", ["hq", "scale", "zero"], ["y"]),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes, "g", [value("x", TensorProto.FLOAT, [256])], [value("y", TensorProto.FLOAT, [256])], grid
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


@pytest.mark.parametrize("scale", [1 / 255, 0.8 / 255])
def test_the_rewrite_gives_the_same_codes_over_the_whole_input_grid(scale):
    """Every input code from -4 to 4 (step 1/32, past both clips): the rewritten graph's gate values equal
    the float HardSigmoid's, within one code at the rounding ties of onnxruntime's integer add."""
    x = ((np.arange(256) - 128) / 32).astype(np.float32)
    model = qdq_hardsigmoid(scale, 0)
    expected = run(model, x)
    hardsigmoids_as_adds(model.graph)
    assert [node.op_type for node in model.graph.node].count("HardSigmoid") == 0
    got = run(model, x)
    codes = np.round(np.abs(got - expected) / scale)
    assert codes.max() <= 1 and np.mean(codes > 0) < 0.05
    assert got.min() == 0 and got.max() == pytest.approx(255 * scale)  # both clips held by the Q


@pytest.mark.parametrize(("scale", "zero_point"), [(2 / 255, 0), (1 / 255, 10)])
def test_a_gate_whose_q_would_not_clip_stays_hardsigmoid(scale, zero_point):
    """A Q that spans more than [0, 1], or codes below 0, would let values past the clips through."""
    model = qdq_hardsigmoid(scale, zero_point)
    hardsigmoids_as_adds(model.graph)
    assert [node.op_type for node in model.graph.node].count("HardSigmoid") == 1


def test_gated_hardswish_checkpoints_reload(tmp_path):
    torch.manual_seed(0)
    qmodel = roundtrip(ConvAct(nn.Hardswish), SHAPE, tmp_path / "q.onnx").qmodel
    save_checkpoint(qmodel, tmp_path / "gated.pt")
    loaded, _ = load_checkpoint(tmp_path / "gated.pt", model=ConvAct(nn.Hardswish))
    assert isinstance(loaded.act1.activation, GatedHardswish)
    x = torch.randn(4, *SHAPE)
    with torch.no_grad():
        assert torch.equal(loaded(x), qmodel(x))
