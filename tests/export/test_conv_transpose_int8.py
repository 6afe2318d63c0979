"""Transposed convs (1d/2d/3d, grouped, output_padding): per-output-channel weight quantization on weight
axis 1, int8 QDQ export that onnxruntime runs, and the layer named as float (no integer kernel)."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn

from prunequant.quantization import QuantConvTranspose1d, QuantConvTranspose2d, QuantConvTranspose3d

from ..quantization.int8_roundtrip import roundtrip

NO_KERNEL = "onnxruntime has no integer ConvTranspose kernel"


class Decoder(nn.Module):
    """conv-BN-ReLU -> grouped transposed conv (stride 2, output_padding 1) -> BN-ReLU -> 1x1 conv."""

    def __init__(self, dims: int, groups: int) -> None:
        super().__init__()
        conv, transposed, norm = (
            getattr(nn, f"Conv{dims}d"),
            getattr(nn, f"ConvTranspose{dims}d"),
            getattr(nn, f"BatchNorm{dims}d"),
        )
        self.conv1, self.bn1, self.relu1 = conv(2, 8, 3, padding=1), norm(8), nn.ReLU()
        self.up = transposed(8, 6, 3, stride=2, padding=1, output_padding=1, groups=groups)
        self.bn2, self.relu2 = norm(6), nn.ReLU()
        self.head = conv(6, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.head(self.relu2(self.bn2(self.up(x))))


CASES = [
    (1, 2, QuantConvTranspose1d, (2, 12)),
    (2, 2, QuantConvTranspose2d, (2, 6, 6)),
    (2, 1, QuantConvTranspose2d, (2, 6, 6)),
    (3, 1, QuantConvTranspose3d, (2, 4, 4, 4)),
]


@pytest.mark.parametrize(("dims", "groups", "wrapper", "shape"), CASES, ids=["1d-g2", "2d-g2", "2d", "3d"])
def test_transposed_convs_quantize_per_output_channel_and_run_on_onnxruntime(
    dims, groups, wrapper, shape, tmp_path
):
    torch.manual_seed(0)
    trip = roundtrip(Decoder(dims, groups), shape, tmp_path / "up.onnx")
    up = trip.qmodel.up
    assert isinstance(up, wrapper)
    quantizer = up.weight_quantizer
    assert quantizer.axis == 1 and quantizer.scale.shape == (6 // groups,)  # [in, out/groups, k...]
    weight = up.masked_weight().detach()
    expected = weight.abs().movedim(1, 0).flatten(1).amax(1) / 127
    assert torch.allclose(quantizer.scale, expected)
    assert NO_KERNEL in trip.result.float_layers["up"]
    assert trip.result.float_layers.keys() == {"up", "head"}  # the head conv makes the model output
    # a BN after a grouped transposed conv is not folded, and is named float
    norms = {"bn2": "BatchNorm after a grouped transposed conv is not folded: it runs in float"}
    assert trip.result.float_norms == (norms if groups > 1 else {})
    assert trip.result.layers == "mixed: 1 of 3 layers int8" + ("; 1 norm float" if groups > 1 else "")
    assert trip.ops.get("ConvTranspose", 0) == 1 and trip.ops.get("QLinearConv", 0) == 1
    assert trip.max_diff < 0.02


def test_the_transposed_weight_is_stored_as_8_bit_codes_with_an_axis_1_dequantize(tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(Decoder(2, 2), (2, 6, 6), tmp_path / "up.onnx")
    graph = onnx.load(trip.result.output).graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    dq = next(node for node in graph.node if node.name == "up/weight_dq")
    assert helper.get_attribute_value(dq.attribute[0]) == 1
    stored, scale, zero_point = (constants[name] for name in dq.input)
    assert stored.dtype in (np.int8, np.uint8) and scale.shape == zero_point.shape == (3,)
    codes = stored.astype(np.int64) - zero_point.astype(np.int64).reshape(1, 3, 1, 1)
    up = trip.qmodel.up
    assert np.array_equal(np.abs(codes), np.abs(up.weight_quantizer.codes(up.masked_weight()).numpy()))
