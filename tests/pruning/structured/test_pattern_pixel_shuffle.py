"""PixelShuffle joins r^2 input channels into one: they are pruned as one run; PixelUnshuffle splits."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.pruning.structured import dependency_groups, prune_channels


class SubPixel(nn.Module):
    """ESPCN-style upsampler, then a space-to-depth back down."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.conv3 = nn.Conv2d(24, 3, 1)

    def forward(self, x):
        x = torch.relu(self.conv2(self.shuffle(self.conv1(x))))
        return self.conv3(nn.functional.pixel_unshuffle(x, 2))


def test_pixel_shuffle_prunes_runs_of_r2_exactly(equivalent):
    torch.manual_seed(0)
    model = SubPixel().eval()
    x = torch.randn(2, 3, 4, 4)
    graph = dependency_groups(model, x)
    assert graph.group("conv1").unit == 4
    assert ("conv2", "in", 0, 1, 4) in {
        (m.module, m.role, m.offset, m.repeat, m.unit) for m in graph.group("conv1").members
    }
    assert ("conv3", "in", 0, 4, 1) in {
        (m.module, m.role, m.offset, m.repeat, m.unit) for m in graph.group("conv2").members
    }
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    plans = {p.name: p for p in result.groups}
    assert plans["conv1"].kept == 8 and sorted(plans["conv1"].removed)[::4] == [
        c for c in sorted(plans["conv1"].removed) if c % 4 == 0
    ]
    assert (result.model.conv1.out_channels, result.model.conv2.in_channels) == (8, 2)
    assert (result.model.conv2.out_channels, result.model.conv3.in_channels) == (3, 12)
    equivalent(model, result, x)
