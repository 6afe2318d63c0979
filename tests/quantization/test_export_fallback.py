"""A forward with a Python shape check cannot be traced by torch.fx: quantize() falls back to torch.export
on the first calibration batch, so the model input and first conv are still quantized and BN is folded."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.quantization import QuantAct, QuantConfig, QuantConv2d, QuantLinear

from .int8_roundtrip import roundtrip

SHAPE = (3, 8, 8)


class Checked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.conv2, self.bn2, self.relu2 = nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8 or x.shape[-2] != 8:
            raise ValueError("this model takes 8x8 inputs")
        x = self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.mark.parametrize("fold_bn", [False, True], ids=["bn-at-export", "fold_bn"])
def test_a_shape_checking_forward_is_quantized_through_torch_export(fold_bn, tmp_path):
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="used torch.export instead"):
        trip = roundtrip(Checked(), SHAPE, tmp_path / "checked.onnx", QuantConfig(fold_bn=fold_bn), warn=True)
    qmodel = trip.qmodel
    assert isinstance(qmodel.conv1, QuantConv2d) and qmodel.conv1.input_quantizer is not None
    assert isinstance(qmodel.relu1, QuantAct) and isinstance(qmodel.fc, QuantLinear)
    assert isinstance(qmodel.bn1, nn.Identity) == fold_bn
    assert trip.ops.get("BatchNormalization", 0) == 0  # folded (at quantize or at export)
    assert trip.result.layers == "int8: all 3 layers", trip.result.float_layers
    assert trip.max_diff < 0.02
