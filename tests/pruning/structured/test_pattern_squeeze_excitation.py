"""Squeeze-excitation (EfficientNet / MobileNetV3): the expand conv's outputs are tied to the features they
scale, the reduce conv's hidden channels are a group of their own; stochastic depth on the residual branch
(torchvision.ops.stochastic_depth) drops whole samples and passes the channels."""

from __future__ import annotations

import torch
from torch import fx, nn

from prunequant.pruning.structured import dependency_groups, prune_channels


def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool = True) -> torch.Tensor:
    """torchvision.ops.stochastic_depth: zero whole samples ("row") with probability p while training."""
    if not training or p == 0.0:
        return x
    shape = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    return x * torch.empty(shape).bernoulli_(1.0 - p).div_(1.0 - p)


fx.wrap("stochastic_depth")  # traced as one call, as torchvision does


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, hidden: int, gate: type[nn.Module]) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, hidden, 1), nn.Conv2d(hidden, channels, 1)
        self.act, self.gate = nn.SiLU(), gate()

    def forward(self, x):
        scale = self.gate(self.fc2(self.act(self.fc1(nn.functional.adaptive_avg_pool2d(x, 1)))))
        return x * scale


class MBConv(nn.Module):
    def __init__(self, channels: int, gate: type[nn.Module]) -> None:
        super().__init__()
        wide = channels * 4
        self.expand = nn.Sequential(nn.Conv2d(channels, wide, 1, bias=False), nn.BatchNorm2d(wide), nn.SiLU())
        self.dw = nn.Sequential(
            nn.Conv2d(wide, wide, 3, 1, 1, groups=wide, bias=False), nn.BatchNorm2d(wide), nn.SiLU()
        )
        self.se = SqueezeExcitation(wide, channels // 2, gate)
        self.project = nn.Sequential(nn.Conv2d(wide, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + stochastic_depth(y, 0.2, "row", self.training)


class TinyEfficientNet(nn.Module):
    def __init__(self, gate: type[nn.Module] = nn.Sigmoid) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.SiLU())
        self.blocks = nn.Sequential(MBConv(8, gate), MBConv(8, gate))
        self.head = nn.Sequential(nn.Conv2d(8, 32, 1), nn.SiLU())
        self.fc = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc(self.head(self.blocks(self.stem(x))).mean((2, 3)))


def test_squeeze_excitation_groups():
    graph = dependency_groups(TinyEfficientNet().eval(), torch.randn(2, 3, 16, 16))
    assert graph.skipped_layers == {}
    expanded = {(m.module, m.role) for m in graph.group("blocks.0.expand.0").members}
    assert {("blocks.0.dw.0", "out"), ("blocks.0.se.fc1", "in"), ("blocks.0.se.fc2", "out")} <= expanded
    hidden = graph.group("blocks.0.se.fc1")
    assert hidden.prunable and {(m.module, m.role) for m in hidden.members} == {
        ("blocks.0.se.fc1", "out"),
        ("blocks.0.se.fc2", "in"),
    }
    residual = {m.module for m in graph.group("stem.0").members}  # stochastic depth passes the channels
    assert {"blocks.0.project.0", "blocks.1.project.0", "head.0"} <= residual


def test_squeeze_excitation_prunes_exactly(equivalent, randomize_norms, onnx_matches, tmp_path):
    for gate in (nn.Sigmoid, nn.Hardsigmoid):
        torch.manual_seed(0)
        model = randomize_norms(TinyEfficientNet(gate))
        x = torch.randn(2, 3, 16, 16)
        result = prune_channels(model, x, 0.5, return_result=True)
        assert not result.skipped_layers
        se = result.model.blocks[0].se
        assert (se.fc1.in_channels, se.fc1.out_channels, se.fc2.out_channels) == (16, 2, 16)
        assert result.model.stem[0].out_channels == 4
        equivalent(model, result, x)
        onnx_matches(result.model, x, tmp_path / f"se_{gate.__name__}.onnx")
