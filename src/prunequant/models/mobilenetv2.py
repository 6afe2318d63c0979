"""MobileNetV2 (Sandler et al. 2018): inverted residuals, depthwise convs, ReLU6, width multiplier."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.models.layers import conv_bn_act, init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_positive

STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
"""(expansion t, output channels c, blocks n, first stride s) per stage, as in the paper's Table 2."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round `value` to the nearest multiple of `divisor`, never going below 90% of it."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection, plus input when shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_act(in_channels, hidden, 1, activation=nn.ReLU6))
        layers.append(conv_bn_act(hidden, hidden, 3, stride=stride, groups=hidden, activation=nn.ReLU6))
        layers.append(conv_bn_act(hidden, out_channels, 1, activation=None))
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return out + x if self.use_residual else out


class MobileNetV2(nn.Module):
    """features (stem, 17 inverted residuals, 1x1 conv to 1280) -> global pool -> dropout + fc.

    `cifar_stride` keeps the stem and the second stage at stride 1, so 32x32 inputs end at 4x4, not 1x1.
    """

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0, cifar_stride: bool = True
    ) -> None:
        super().__init__()
        channels = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [
            conv_bn_act(in_channels, channels, stride=1 if cifar_stride else 2, activation=nn.ReLU6)
        ]
        for index, (expansion, width, blocks, stride) in enumerate(STAGES):
            out_channels = make_divisible(width * width_mult)
            first_stride = 1 if cifar_stride and index == 1 else stride
            for block in range(blocks):
                layers.append(
                    InvertedResidual(channels, out_channels, first_stride if block == 0 else 1, expansion)
                )
                channels = out_channels
        layers.append(conv_bn_act(channels, last, 1, activation=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


@register_model("mobilenetv2")
def mobilenetv2(
    *, num_classes: int, in_channels: int, input_size: int, width_mult: float = 1.0
) -> MobileNetV2:
    """MobileNetV2; CIFAR strides (stem and stage 2 at stride 1) up to input_size 64, ImageNet above."""
    check_positive("width_mult", width_mult)
    return MobileNetV2(num_classes, in_channels, width_mult, cifar_stride=input_size <= 64)
