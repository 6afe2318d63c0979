"""A VAE decoder: Linear -> view(B, -1, H, W) -> ConvTranspose. Each channel is a run of H*W features."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import dependency_groups, prune_channels


class Decoder(nn.Module):
    def __init__(self, fixed: bool = False) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 8 * 3 * 3)
        self.bn = nn.BatchNorm2d(8)
        self.up = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
        self.out = nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1)
        self.fixed = fixed

    def forward(self, z):
        x = self.fc(z).view(z.size(0), 8 if self.fixed else -1, 3, 3)
        return torch.sigmoid(self.out(torch.relu(self.up(torch.relu(self.bn(x))))))


def test_linear_viewed_into_channels_prunes_runs_exactly(equivalent, randomize_norms):
    torch.manual_seed(0)
    model = randomize_norms(Decoder())
    z = torch.randn(2, 6)
    graph = dependency_groups(model, z)
    assert graph.group("fc").unit == 9 and {"fc", "bn", "up"} <= set(graph.group("fc").layers)
    result = prune_channels(model, z, 0.5, return_result=True)
    assert not result.skipped_layers
    assert (result.model.fc.out_features, result.model.bn.num_features, result.model.up.in_channels) == (
        36,
        4,
        4,
    )
    assert result.model.up.out_channels == 2
    assert equivalent(model, result, z)[0].shape == (2, 1, 12, 12)


def test_hard_coded_channel_count_in_the_view_is_refused_with_the_fix():
    with pytest.warns(UserWarning, match="write -1 there"):
        result = prune_channels(Decoder(fixed=True).eval(), torch.randn(2, 6), 0.5, return_result=True)
    assert "fc" in result.skipped_layers and "fixes 8 channels" in result.skipped_layers["fc"]
