"""Zero-padded channels (ResNet option A shortcuts) and an add of a concat with one tensor: the spaces are
cut to a common layout, the padded zeros stay, everything else is pruned exactly."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.models import build
from prunequant.pruning.structured import dependency_groups, prune_channels


def test_resnet_option_a_prunes_through_zero_padded_shortcuts(equivalent, randomize_norms):
    torch.manual_seed(0)
    model = randomize_norms(build("resnet20", shortcut="A"))
    x = torch.randn(2, 3, 16, 16)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    assert result.model.conv1.out_channels == 8  # stage 1 channels are pruned through the padded shortcut
    assert result.model.layer2[0].conv2.out_channels == 8 + 8 + 8  # 2x8 zero-padded channels kept, 8 of 16
    equivalent(model, result, x)


class ConcatPlusConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 6, 1), nn.Conv2d(3, 10, 1)
        self.out = nn.Conv2d(10, 2, 1)

    def forward(self, x):
        return self.out(torch.relu(torch.cat([self.a(x), self.b(x)], 1) + self.c(x)))


def test_add_of_a_concat_and_one_tensor_splits_the_tensor_channels(equivalent):
    torch.manual_seed(0)
    model = ConcatPlusConv().eval()
    x = torch.randn(2, 3, 4, 4)
    graph = dependency_groups(model, x)
    assert {g.name: g.channels for g in graph.prunable} == {"a": 4, "b": 6}
    assert ("c", "out", 4, 1, 1) in {
        (m.module, m.role, m.offset, m.repeat, m.unit) for m in graph.group("b").members
    }
    result = prune_channels(model, x, 0.5, return_result=True)
    assert result.model.c.out_channels == 5 and not result.skipped_layers
    equivalent(model, result, x)
