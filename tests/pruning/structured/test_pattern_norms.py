"""Instance, group, layer and batch norms of every dimension are pruned with their channels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.models import load_checkpoint, save_checkpoint
from prunequant.pruning.structured import dependency_groups, prune_channels


def _randomize(model: nn.Module) -> nn.Module:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in model.modules():
            for name in ("weight", "bias", "running_mean"):
                tensor = (
                    getattr(module, name, None) if not isinstance(module, nn.modules.conv._ConvNd) else None
                )
                if isinstance(tensor, torch.Tensor):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return model.eval()


class Norms(nn.Module):
    def __init__(self, norm: nn.Module, channels: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.norm = norm
        self.out = nn.Conv2d(channels, 4, 1)

    def forward(self, x):
        return self.out(torch.relu(self.norm(self.conv(x))))


NORMS = {
    "instance": lambda: nn.InstanceNorm2d(8),
    "instance_affine": lambda: nn.InstanceNorm2d(8, affine=True),
    "instance_tracked": lambda: nn.InstanceNorm2d(8, affine=True, track_running_stats=True),
    "group": lambda: nn.GroupNorm(4, 8),
    "group_per_channel": lambda: nn.GroupNorm(8, 8),
}


@pytest.mark.parametrize("kind", sorted(NORMS))
def test_norm_pruned_with_its_channels(kind, equivalent, tmp_path):
    torch.manual_seed(0)
    model = _randomize(Norms(NORMS[kind]()))
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    norm = result.model.norm
    assert getattr(norm, "num_features", getattr(norm, "num_channels", None)) == 4
    equivalent(model, result, x)
    reloaded, _ = load_checkpoint(
        save_checkpoint(result.model, tmp_path / "m.pt"), model=Norms(NORMS[kind]())
    )
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x), result.model(x))


def test_group_norm_loses_whole_groups(equivalent):
    model = _randomize(Norms(nn.GroupNorm(4, 8)))
    x = torch.randn(2, 3, 8, 8)
    assert dependency_groups(model, x).group("conv").unit == 2
    result = prune_channels(model, x, 0.5, return_result=True)
    (plan,) = [p for p in result.groups if p.removed]
    assert len(plan.removed) == 4 and all(c ^ 1 in plan.removed for c in plan.removed)  # pairs (2k, 2k+1)
    assert result.model.norm.num_groups == 2


def test_group_norm_with_one_group_is_refused_by_name():
    model = _randomize(Norms(nn.GroupNorm(1, 8)))
    with pytest.warns(UserWarning, match="normalises all channels together"):
        result = prune_channels(model, torch.randn(2, 3, 8, 8), 0.5, return_result=True)
    assert set(result.skipped_layers) == {"conv", "norm", "out"}
    assert "1 group" in result.skipped_layers["norm"]


class ChannelsLastNorm(nn.Module):
    """ConvNeXt style: LayerNorm over the channels after a permute to NHWC."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        y = self.norm(self.conv(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.out(y)


def test_layer_norm_over_channels_is_pruned_and_normalises_the_kept_ones():
    model = _randomize(ChannelsLastNorm())
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers and result.model.norm.normalized_shape == (4,)
    (plan,) = [p for p in result.groups if p.removed]
    keep = torch.tensor([c for c in range(8) if c not in plan.removed])
    with torch.no_grad():  # reference: the original layers, restricted to the kept channels
        y = model.conv(x)[:, keep].permute(0, 2, 3, 1)
        y = nn.functional.layer_norm(y, (4,), model.norm.weight[keep], model.norm.bias[keep])
        expected = nn.functional.conv2d(y.permute(0, 3, 1, 2), model.out.weight[:, keep], model.out.bias)
        torch.testing.assert_close(result.model(x), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("dims", [1, 3])
def test_batch_norm_1d_and_3d(dims, equivalent, randomize_norms):
    conv = {1: nn.Conv1d, 3: nn.Conv3d}[dims]
    bn = {1: nn.BatchNorm1d, 3: nn.BatchNorm3d}[dims]
    model = randomize_norms(nn.Sequential(conv(3, 8, 3, padding=1), bn(8), nn.ReLU(), conv(8, 4, 1)))
    x = torch.randn(2, 3, *([4] * dims))
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers and result.model[1].num_features == 4
    equivalent(model, result, x)
