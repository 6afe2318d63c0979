"""Unsupported patterns are reported in skipped_layers with a warning; the model stays right."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import dependency_groups, prune_channels


class DataDependent(nn.Module):
    """fx cannot trace `if x.sum() > 0`: this module becomes an opaque leaf."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)

    def forward(self, x):
        return self.conv(x) if x.sum() > 0 else -self.conv(x)


class WithOpaque(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.custom = DataDependent()
        self.conv2 = nn.Conv2d(8, 12, 3, padding=1)
        self.conv3 = nn.Conv2d(12, 6, 1)
        self.head = nn.Linear(6, 4)

    def forward(self, x):
        x = self.custom(self.custom(torch.relu(self.conv1(x))))  # called twice
        x = torch.relu(self.conv2(x))
        return self.head(self.conv3(x).mean((2, 3)))


class HardCodedView(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3, padding=1, stride=2)
        self.head = nn.Linear(4 * 4 * 4, 4)

    def forward(self, x):
        x = self.conv2(torch.relu(self.conv1(x)))
        return self.head(x.view(x.size(0), 64))


class RollChannels(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.roll(self.conv1(x), 1, dims=1)
        return self.head(self.conv2(x).mean((2, 3)))


CASES = {
    "opaque": (WithOpaque, {"conv1", "custom.conv"}, {"conv2", "conv3"}),
    "hard_coded_view": (HardCodedView, {"conv2", "head"}, {"conv1"}),
    "roll": (RollChannels, {"conv1"}, {"conv2"}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_unsupported_pattern_is_skipped_reported_and_correct(name, equivalent):
    cls, skipped, pruned_groups = CASES[name]
    torch.manual_seed(0)
    model = cls().eval()
    x = torch.randn(2, 3, 8, 8)
    with pytest.warns(UserWarning, match="left these layers unpruned"):
        result = prune_channels(model, x, 0.5, return_result=True)
    assert set(result.skipped_layers) == skipped
    assert {plan.name for plan in result.groups if plan.removed} == pruned_groups
    equivalent(model, result, x)


def test_skip_reason_names_the_op():
    graph = dependency_groups(WithOpaque(), torch.randn(2, 3, 8, 8))
    assert "could not be traced" in graph.skipped_layers["conv1"]
    assert "custom" in graph.skipped_layers["conv1"]


def test_model_output_and_input_are_expected_not_skipped():
    graph = dependency_groups(
        nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU(), nn.Conv2d(4, 2, 1)), torch.randn(1, 3, 4, 4)
    )
    assert graph.skipped_layers == {}
    assert [g.name for g in graph.prunable] == ["0"]


class Untraceable(nn.Module):
    """Value-dependent control flow at the top level: neither torch.fx nor torch.export can trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 8, 1), nn.Conv2d(8, 4, 1)

    def forward(self, x):
        x = self.conv1(x)
        return self.conv2(x if x.sum() > 0 else -x).mean((2, 3))


def test_untraceable_model_is_returned_unpruned_with_every_layer_reported():
    model, x = Untraceable().eval(), torch.randn(2, 3, 4, 4)
    with pytest.warns(UserWarning, match="conv1 .*cannot trace Untraceable"):
        result = prune_channels(model, x, 0.5, return_result=True)
    assert set(result.skipped_layers) == {"conv1", "conv2"} and result.groups == []
    with torch.no_grad():
        assert torch.equal(result.model(x), model(x))
