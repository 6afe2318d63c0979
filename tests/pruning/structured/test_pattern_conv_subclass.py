"""Subclasses of nn.Conv2d (a "same"-padding conv with a padding child) are layers by role."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from prunequant.profiling import profile
from prunequant.pruning.structured import prune_channels


class SamePadConv(nn.Conv2d):
    """As in public EfficientNet ports: a static padding child module, then the plain conv op."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)
        total = kernel - 1
        self.static_padding = nn.ZeroPad2d((total // 2, total - total // 2, total // 2, total - total // 2))

    def forward(self, x):
        return F.conv2d(
            self.static_padding(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


class Reversed(nn.Conv2d):
    """Adds behaviour pruning cannot keep: it reverses its output channels."""

    def forward(self, x):
        return super().forward(x).flip(1)


class Net(nn.Module):
    def __init__(self, last: type[nn.Conv2d] = SamePadConv) -> None:
        super().__init__()
        self.stem = nn.Sequential(SamePadConv(3, 8, 3, 2), nn.BatchNorm2d(8), nn.SiLU())
        self.dw = nn.Sequential(SamePadConv(8, 8, 3, groups=8), nn.BatchNorm2d(8), nn.SiLU())
        self.expand = nn.Sequential(last(8, 16, 1), nn.BatchNorm2d(16), nn.SiLU())
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.expand(self.dw(self.stem(x))).mean((2, 3)))


def test_profile_counts_every_subclassed_conv():
    report = profile(Net(), torch.randn(1, 3, 8, 8), latency=False)
    convs = [row for row in report.layers if row["type"] == "SamePadConv"]
    assert [row["name"] for row in convs] == ["stem.0", "dw.0", "expand.0"]
    assert [row["macs"] for row in convs] == [8 * 3 * 9 * 16, 8 * 9 * 16, 16 * 8 * 16]
    assert not any(row["name"].endswith("static_padding") for row in report.layers)


def test_subclassed_convs_are_pruned_with_their_padding(equivalent, randomize_norms):
    model = randomize_norms(Net())
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    assert {plan.name for plan in result.groups if plan.removed} == {"stem.0", "expand.0"}
    assert type(result.model.stem[0]) is SamePadConv and result.model.dw[0].groups == 4
    equivalent(model, result, x)


def test_subclass_with_behaviour_pruning_cannot_keep_is_refused_by_name(equivalent, randomize_norms):
    model = randomize_norms(Net(last=Reversed))
    x = torch.randn(2, 3, 8, 8)
    with pytest.warns(UserWarning, match="expand.0"):
        result = prune_channels(model, x, 0.5, return_result=True)
    assert "subclasses Conv2d" in result.skipped_layers["expand.0"]
    assert result.model.expand[0].out_channels == 16
    equivalent(model, result, x)
