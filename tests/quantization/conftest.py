"""Fixtures of the quantization tests: a calibrated fake-quant TinyCNN, a pruned copy of the float one, and a
model whose branches end without ReLU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.quantization import QuantConfig, quantize


def zero_smallest(model: nn.Module, share: float) -> nn.Module:
    """Zero the `share` smallest-magnitude weights of every Conv2d / Linear, in place (a pruned model)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                weight = module.weight
                k = int(share * weight.numel())
                threshold = weight.abs().flatten().kthvalue(k).values
                weight[weight.abs() <= threshold] = 0
    return model


class Branches(nn.Module):
    """A conv branch without BN and a conv-BN branch meet in a sum; a 1x1 conv reads the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu = nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.conv3, self.bn3 = nn.Conv2d(4, 4, 1, bias=False), nn.BatchNorm2d(4)
        self.conv4 = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.conv2(x) + self.bn3(self.conv3(x))
        x = self.relu(self.conv4(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture
def branches() -> type[Branches]:
    return Branches


@pytest.fixture
def zero_weights():
    """The pruning helper, for tests that prune a model they build themselves."""
    return zero_smallest


@pytest.fixture
def pruned_model(tiny_model: nn.Module) -> nn.Module:
    return zero_smallest(tiny_model, 0.5)


@pytest.fixture
def qmodel(tiny_model: nn.Module, blob_loaders) -> nn.Module:
    return quantize(tiny_model, QuantConfig(w_bits=8, a_bits=8), blob_loaders[0], calib_batches=2)
