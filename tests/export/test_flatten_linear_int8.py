"""A Linear after Flatten / view / pooling reads a tensor on the grid of the quantizer before them: the int8
export runs it as an integer QGemm (not a float Gemm that dequantizes its weights on every call)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ..quantization.int8_roundtrip import roundtrip


class FlattenHead(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how
        self.conv, self.bn, self.relu = nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1, self.relu1, self.fc2 = nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn(self.conv(x))))
        x = self.flatten(x) if self.how == "module" else x.view(x.shape[0], -1)
        return self.fc2(self.relu1(self.fc1(x)))


@pytest.mark.parametrize("how", ["module", "view"])
def test_flatten_then_linear_runs_as_qgemm(how, tmp_path):
    torch.manual_seed(0)
    trip = roundtrip(FlattenHead(how), (1, 8, 8), tmp_path / "head.onnx")
    assert trip.result.layers == "int8: all 3 layers", trip.result.float_layers
    assert trip.ops.get("QGemm", 0) == 2 and trip.ops.get("Gemm", 0) == 0
    assert trip.max_diff < 0.02
