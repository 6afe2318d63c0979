"""One small model per graph pattern; each pruned is checked exactly against the masked original."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.pruning.structured import dependency_groups, keep_count, prune_channels


def conv_bn(cin: int, cout: int, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, groups=groups), nn.BatchNorm2d(cout), nn.ReLU())


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.body = nn.Sequential(
            nn.Conv2d(8, 12, 3, padding=1), nn.BatchNorm2d(12), nn.ReLU(), nn.Conv2d(12, 8, 1)
        )
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.bn(self.body(x) + x))
        return self.head(x.mean((2, 3)))


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = conv_bn(3, 6), conv_bn(3, 10)
        self.bn = nn.BatchNorm2d(16)
        self.fuse = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(16 * 4 + 8 * 4, 5)

    def forward(self, x):
        cat = torch.cat([self.a(x), self.b(x)], dim=1)
        fused = self.fuse(self.bn(cat))
        pooled = nn.functional.adaptive_avg_pool2d(torch.cat([cat, fused], 1), 2)
        return self.head(torch.flatten(pooled, 1))


class Depthwise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.expand = conv_bn(3, 8)
        self.dw = conv_bn(8, 8, groups=8)
        self.dw2 = nn.Conv2d(8, 16, 3, padding=1, groups=8)  # channel multiplier 2
        self.bn = nn.BatchNorm2d(16)
        self.project = nn.Conv2d(16, 6, 1)
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        x = self.bn(self.dw2(self.dw(self.expand(x))))
        return self.head(self.project(x).mean((2, 3)))


class Grouped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.grouped = conv_bn(8, 12, groups=4)
        self.out = nn.Conv2d(12, 6, 1)
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        return self.head(self.out(self.grouped(self.stem(x))).mean((2, 3)))


class FlattenLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(conv_bn(3, 8), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(8 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 5))

    def forward(self, x):
        return self.classifier(self.features(x))


class SqueezeExcite(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 12)
        self.fc1, self.fc2 = nn.Linear(12, 6), nn.Linear(6, 12)
        self.out = nn.Conv2d(12, 8, 1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        b, c = x.shape[:2]
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3))))))
        x = x * gate.view(b, c, 1, 1)
        return self.head(self.out(x).mean((2, 3)))


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.BatchNorm1d(16), nn.Linear(16, 4)
        )

    def forward(self, x):
        return self.net(x)


class SharedConv(nn.Module):
    """One conv applied to two different tensors: both inputs must lose the same channels."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = conv_bn(3, 8), conv_bn(3, 8)
        self.shared = nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        y = self.shared(self.a(x)) + self.shared(self.b(x))
        return self.head(y.mean((2, 3)))


class ChannelsLast(nn.Module):
    """ConvNeXt-style MLP: permute to NHWC, linear over channels, permute back."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 8)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = self.stem(x)
        y = self.fc2(torch.relu(self.fc1(x.permute(0, 2, 3, 1)))).permute(0, 3, 1, 2)
        return self.head((x + y).mean((2, 3)))


class ShapeControlFlow(nn.Module):
    """fx cannot trace `if x.shape[-1] > 4` at the top level: the graph comes from torch.export instead."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 8)
        self.out = nn.Conv2d(8, 6, 1)
        self.head = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x):
        if x.shape[-1] > 4:
            x = nn.functional.adaptive_avg_pool2d(x, 4)
        return self.head(torch.flatten(self.out(self.stem(x)), 1))


PATTERNS = {
    "residual": (Residual, (3, 8, 8)),
    "concat": (Concat, (3, 8, 8)),
    "depthwise": (Depthwise, (3, 8, 8)),
    "grouped": (Grouped, (3, 8, 8)),
    "flatten_linear": (FlattenLinear, (3, 8, 8)),
    "se": (SqueezeExcite, (3, 8, 8)),
    "linear_linear": (MLP, (20,)),
    "shared_conv": (SharedConv, (3, 8, 8)),
    "channels_last": (ChannelsLast, (3, 8, 8)),
    "export_fallback": (ShapeControlFlow, (3, 8, 8)),
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_pattern_pruned_equals_masked_original(name, equivalent, randomize_norms):
    cls, shape = PATTERNS[name]
    torch.manual_seed(0)
    model = randomize_norms(cls())
    x = torch.randn(4, *shape)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert not result.skipped_layers
    for plan in result.groups:
        blocks = result.graph.group(plan.name).blocks
        assert plan.kept == keep_count(plan.channels, plan.channels / 2, blocks=blocks) < plan.channels
    equivalent(model, result, x)
    before = sum(p.numel() for p in model.parameters())
    assert sum(p.numel() for p in result.model.parameters()) < before


def members(graph, name):
    return {(m.module, m.role, m.offset, m.repeat) for m in graph.group(name).members}


def test_residual_add_ties_both_producers():
    graph = dependency_groups(Residual(), torch.randn(2, 3, 8, 8))
    assert members(graph, "stem.0") == {
        ("stem.0", "out", 0, 1), ("stem.1", "out", 0, 1), ("body.0", "in", 0, 1), ("body.3", "out", 0, 1),
        ("bn", "out", 0, 1), ("head", "in", 0, 1),
    }  # fmt: skip
    assert [g.name for g in graph.prunable] == ["stem.0", "body.0"]


def test_concat_offsets_and_flatten_blocks():
    graph = dependency_groups(Concat(), torch.randn(2, 3, 8, 8))
    assert members(graph, "b.0") == {
        ("b.0", "out", 0, 1),
        ("b.1", "out", 0, 1),
        ("bn", "out", 6, 1),
        ("fuse", "in", 6, 1),
        ("head", "in", 24, 4),
    }
    assert ("head", "in", 64, 4) in members(graph, "fuse")


def test_depthwise_passes_channels_and_multiplier_repeats():
    graph = dependency_groups(Depthwise(), torch.randn(2, 3, 8, 8))
    assert members(graph, "expand.0") >= {
        ("dw.0", "out", 0, 1),
        ("dw2", "out", 0, 2),
        ("project", "in", 0, 2),
    }


def test_grouped_conv_prunes_equally_per_group(equivalent, randomize_norms):
    model = randomize_norms(Grouped())
    x = torch.randn(2, 3, 8, 8)
    graph = dependency_groups(model, x)
    assert graph.group("stem.0").blocks == 4 and graph.group("grouped.0").blocks == 4
    result = prune_channels(model, x, 0.3, return_result=True)
    plan = {p.name: p for p in result.groups}["stem.0"]
    assert plan.kept == 4  # 8 * 0.7 = 5.6 -> nearest multiple of 4
    assert [sum(1 for c in plan.removed if c // 2 == block) for block in range(4)] == [1, 1, 1, 1]
    assert result.model.grouped[0].groups == 4 and result.model.grouped[0].in_channels == 4
    equivalent(model, result, x)


def test_se_gate_is_tied_to_its_input_channels():
    graph = dependency_groups(SqueezeExcite(), torch.randn(2, 3, 8, 8))
    assert {"fc1", "fc2", "out"} <= {m.module for m in graph.group("stem.0").members}
    assert graph.group("fc1").channels == 6 and graph.group("fc1").prunable


def test_output_layer_is_never_pruned():
    graph = dependency_groups(MLP(), torch.randn(2, 20))
    assert not graph.group("net.4").prunable and graph.group("net.4").unsafe == ["model output"]
    assert [g.name for g in graph.prunable] == ["net.0", "net.2"]


class PerChannelLayers(nn.Module):
    """PReLU with one slope per channel and affine InstanceNorm: both are sliced with the channels."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.act = nn.PReLU(8)
        self.out = nn.Conv2d(8, 4, 1)

    def forward(self, x):
        return self.out(self.act(self.norm(self.conv(x)))).mean((2, 3))


def test_per_channel_layers_are_sliced_and_reload(tmp_path, equivalent):
    from prunequant.models import load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = PerChannelLayers().eval()
    with torch.no_grad():
        model.act.weight.uniform_(0.0, 0.5)
        model.norm.weight.uniform_(0.5, 1.5)
    x = torch.randn(2, 3, 8, 8)
    result = prune_channels(model, x, 0.5, return_result=True)
    assert result.model.act.num_parameters == 4 and result.model.norm.num_features == 4
    equivalent(model, result, x)
    reloaded, _ = load_checkpoint(save_checkpoint(result.model, tmp_path / "m.pt"), model=PerChannelLayers())
    with torch.no_grad():
        assert torch.equal(reloaded(x), result.model(x))
