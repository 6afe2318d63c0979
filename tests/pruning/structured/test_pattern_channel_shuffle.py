"""Channel shuffle (view as groups, transpose, view back): the shuffled groups are tied channel by channel,
so each keeps the same channels and the pruned shuffle interleaves them as the original did. ShuffleNetV2's
pass-through halves (chunk, concat, shuffle) cannot be tied that way: test_pattern_shuffle_halves.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import dependency_groups, prune_channels


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    b, c, h, w = x.size()
    x = x.view(b, groups, c // groups, h, w)
    return torch.transpose(x, 1, 2).contiguous().view(b, -1, h, w)


class OneShuffle(nn.Module):
    def __init__(self, groups: int = 2) -> None:
        super().__init__()
        self.groups = groups
        self.conv1, self.bn1 = nn.Conv2d(3, 12, 3, padding=1), nn.BatchNorm2d(12)
        self.conv2, self.bn2 = nn.Conv2d(12, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = channel_shuffle(torch.relu(self.bn1(self.conv1(x))), self.groups)
        return self.head(torch.relu(self.bn2(self.conv2(x))).mean((2, 3)))


class CheckedShuffle(OneShuffle):
    """A Python shape check fx cannot trace: the graph comes from torch.export (aten view/transpose/clone)."""

    def forward(self, x):
        if x.shape[2] < 4:
            raise ValueError("input too small")
        return super().forward(x)


@pytest.mark.parametrize("groups", [2, 3])
def test_one_shuffle_is_pruned_exactly(groups, equivalent, randomize_norms, onnx_matches, tmp_path):
    torch.manual_seed(0)
    model = randomize_norms(OneShuffle(groups))
    x = torch.randn(2, 3, 8, 8)
    graph = dependency_groups(model, x)
    first = graph.group(f"conv1[0:{12 // groups}]")
    assert first.channels == 12 // groups and first.prunable
    assert {(m.module, m.role, m.offset, m.repeat) for m in first.members} >= {
        *(("conv1", "out", i * 12 // groups, 1) for i in range(groups)),
        ("conv2", "in", 0, groups),  # channel j of every group: shuffled positions j*groups ...
    }
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    assert result.model.conv1.out_channels == 12 // 2 and result.model.conv2.in_channels == 12 // 2
    equivalent(model, result, x)
    onnx_matches(result.model, x, tmp_path / "shuffle.onnx")


def test_shuffle_traced_by_torch_export_is_pruned_exactly(equivalent, randomize_norms):
    torch.manual_seed(0)
    model = randomize_norms(CheckedShuffle(3))
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers and result.model.conv1.out_channels == 6
    equivalent(model, result, x)
