"""Channel shuffle (view as groups, transpose, view back): the shuffled groups are tied channel by channel,
so each keeps the same channels and the pruned shuffle interleaves them as the original did. ShuffleNetV2's
pass-through halves (chunk, concat, shuffle) cannot be tied that way and are reported as skipped."""

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


def branch(inp: int, out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
        nn.Conv2d(out, out, 3, stride, 1, groups=out, bias=False), nn.BatchNorm2d(out),
        nn.Conv2d(out, out, 1, bias=False), nn.BatchNorm2d(out), nn.ReLU(),
    )  # fmt: skip


class ShuffleBlock(nn.Module):
    """torchvision's ShuffleNetV2 InvertedResidual: stride 2 concatenates two branches, stride 1 passes
    one half of the channels through; both end in a shuffle of 2 groups."""

    def __init__(self, inp: int, out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        half = out // 2
        if stride > 1:
            self.branch1 = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, half, 1, bias=False), nn.BatchNorm2d(half), nn.ReLU(),
            )  # fmt: skip
        self.branch2 = branch(inp if stride > 1 else half, half, stride)

    def forward(self, x):
        if self.stride == 1:
            x1, x2 = x.chunk(2, dim=1)
            out = torch.cat((x1, self.branch2(x2)), dim=1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
        return channel_shuffle(out, 2)


class TinyShuffleNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.stage = nn.Sequential(ShuffleBlock(8, 16, 2), ShuffleBlock(16, 16, 1), ShuffleBlock(16, 16, 1))
        self.conv5 = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc(self.conv5(self.stage(self.stem(x))).mean((2, 3)))


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


def test_shufflenet_block_prunes_its_branches_and_names_the_tied_halves(
    equivalent, randomize_norms, onnx_matches, tmp_path
):
    torch.manual_seed(0)
    model = randomize_norms(TinyShuffleNet())
    x = torch.randn(2, 3, 16, 16)
    result = prune_channels(model, x, 0.5, return_result=True)
    pruned = {plan.name for plan in result.groups if plan.removed}
    assert {"stem.0", "stage.0.branch2.0", "stage.1.branch2.0", "stage.2.branch2.0", "conv5.0"} <= pruned
    assert result.model.stage[1].branch2[0].out_channels == 4  # a branch's inner channels: 8 -> 4
    assert result.model.stage[1].branch2[5].out_channels == 8  # its output is a shuffled half: kept
    reasons = " ".join(result.skipped_layers.values())
    assert "stage.1.branch2.5" in result.skipped_layers and "channel shuffle" in reasons
    equivalent(model, result, x)
    onnx_matches(result.model, x, tmp_path / "shufflenet.onnx")
