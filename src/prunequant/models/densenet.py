"""A small DenseNet-BC (Huang et al. 2017; default L=40, k=12): bottleneck dense layers joined by concat."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models.layers import init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_int_range


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k); returns the input with the k new channels concatenated."""

    def __init__(self, in_channels: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(in_channels, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(self.relu1(self.bn1(x)))
        out = self.conv2(self.relu2(self.bn2(out)))
        return torch.cat([x, out], 1)


class Transition(nn.Sequential):
    """BN-ReLU-conv1x1 (compressing the channels) -> 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = nn.AvgPool2d(2)


class DenseNet(nn.Module):
    """conv3x3(2k) stem, 3 dense blocks of (depth - 4) / 6 layers, transitions, BN-ReLU, global pool, fc."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, depth: int = 40, growth_rate: int = 12
    ) -> None:
        super().__init__()
        layers_per_block = (depth - 4) // 6
        channels = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        for index in range(1, 4):
            block = nn.Sequential()
            for _ in range(layers_per_block):
                block.append(DenseLayer(channels, growth_rate))
                channels += growth_rate
            self.add_module(f"block{index}", block)
            if index < 3:
                self.add_module(f"trans{index}", Transition(channels, channels // 2))
                channels //= 2
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.trans1(self.block1(self.conv1(x)))
        x = self.trans2(self.block2(x))
        x = self.relu(self.bn(self.block3(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


@register_model("densenet")
def densenet(
    *, num_classes: int, in_channels: int, input_size: int, depth: int = 40, growth_rate: int = 12
) -> DenseNet:
    """DenseNet-BC with `depth` = 6n + 4 layers and growth rate k; any input_size works (global pooling)."""
    check_int_range("growth_rate", growth_rate, 1, 256)
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(f"depth must be 6n + 4 with n >= 1 (10, 16, ..., 40, 100), got {depth}")
    return DenseNet(num_classes, in_channels, depth, growth_rate)
