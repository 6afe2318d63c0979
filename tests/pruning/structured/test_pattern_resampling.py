"""Upsample/interpolate and reflection/replication/zero padding act per channel: followed exactly."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from prunequant.pruning.structured import prune_channels


class Resample(nn.Module):
    def __init__(self, dims: int) -> None:
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
        pad = {1: nn.ReflectionPad1d, 2: nn.ReflectionPad2d, 3: nn.ReplicationPad3d}[dims]
        self.conv1 = conv(3, 8, 3, padding=1)
        self.pad = pad(1)
        self.conv2 = conv(8, 8, 3)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv3 = conv(8, 4, 1)
        self.dims = dims

    def forward(self, x):
        x = self.up(self.conv2(self.pad(torch.relu(self.conv1(x)))))
        x = F.pad(x, [1] * (2 * self.dims), mode="replicate")
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[self.dims]
        return self.conv3(F.interpolate(x, scale_factor=0.5, mode=mode, align_corners=False))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_resampling_and_padding_keep_channels(dims, equivalent):
    torch.manual_seed(0)
    model = Resample(dims).eval()
    x = torch.randn(2, 3, *([4] * dims))
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    assert {p.name for p in result.groups if p.removed} == {"conv1", "conv2"}
    equivalent(model, result, x)
