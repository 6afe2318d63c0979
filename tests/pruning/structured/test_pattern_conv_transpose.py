"""Transposed convs (1d/2d/3d, grouped, output_padding): pruned on both channel axes; MACs exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.profiling import profile
from prunequant.pruning.structured import dependency_groups, prune_channels

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONV_T = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class Decoder(nn.Module):
    """conv -> grouped transposed conv (stride 2, output_padding 1) -> BN -> depthwise transposed conv ->
    transposed conv (the output)."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.encode = nn.Sequential(CONV[dims](3, 8, 3, padding=1), BN[dims](8), nn.ReLU())
        self.up = CONV_T[dims](8, 12, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.bn = BN[dims](12)
        self.dw = CONV_T[dims](12, 12, 3, padding=1, groups=12)
        self.out = CONV_T[dims](12, 2, 2, stride=2)

    def forward(self, x):
        return self.out(torch.relu(self.dw(torch.relu(self.bn(self.up(self.encode(x)))))))


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_transposed_convs_prune_exactly(dims, equivalent, randomize_norms):
    torch.manual_seed(0)
    model = randomize_norms(Decoder(dims))
    x = torch.randn(2, 3, *([4] * dims))
    graph = dependency_groups(model, x)
    assert graph.group("encode.0").blocks == 2 and graph.group("up").blocks == 2
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    pruned = result.model
    assert (pruned.up.in_channels, pruned.up.out_channels, pruned.up.groups) == (4, 6, 2)
    assert pruned.up.weight.shape[:2] == (4, 3)  # [in, out/groups, k...]
    assert (pruned.dw.in_channels, pruned.dw.groups, pruned.out.in_channels) == (6, 6, 6)
    output = equivalent(model, result, x)[0]
    assert output.shape == (2, 2, *([16] * dims))


def test_transposed_conv_macs_follow_the_input():
    layer = nn.ConvTranspose2d(8, 12, 3, stride=2, padding=1, output_padding=1, groups=2)
    report = profile(nn.Sequential(layer), torch.randn(1, 8, 5, 7), latency=False)
    (row,) = report.layers
    assert row["output_shape"] == [12, 10, 14]
    assert row["macs"] == 8 * (12 // 2) * 9 * 5 * 7
    assert row["formula_params"] == row["params"] == 8 * 6 * 9 + 12
