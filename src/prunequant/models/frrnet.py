"""A small FRRNet (Pohlen et al. 2017): a full-resolution residual stream beside a pooling stream."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models.layers import conv_bn_act, init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_int_range


class FRRU(nn.Module):
    """Full-resolution residual unit at 1/`factor` scale.

    The residual stream `y` (full resolution) is max-pooled by `factor` and concatenated with the pooling
    stream `z`; two conv-BN-ReLU give the new `z`; a 1x1 conv of it, upsampled back by `factor`, is added
    to `y`. Returns (z, y).
    """

    def __init__(self, in_channels: int, out_channels: int, residual_channels: int, factor: int) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(factor)
        self.convs = nn.Sequential(
            conv_bn_act(in_channels + residual_channels, out_channels),
            conv_bn_act(out_channels, out_channels),
        )
        self.to_residual = nn.Conv2d(out_channels, residual_channels, 1)
        self.upsample = nn.Upsample(scale_factor=factor, mode="nearest")

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.convs(torch.cat([z, self.pool(y)], dim=1))
        return z, y + self.upsample(self.to_residual(z))


class FRRNet(nn.Module):
    """stem -> split into a residual stream (`residual`, full resolution) and a pooling stream that goes
    down through `down.<i>` (FRRUs at 1/2, 1/4, 1/8) and back up through `up.<i>` (1/4, 1/2), then `head`
    joins both streams at full resolution and gives `num_classes` logits."""

    def __init__(
        self, num_classes: int = 11, in_channels: int = 3, width: int = 8, residual_channels: int = 8
    ) -> None:
        super().__init__()
        w1, w2 = 2 * width, 4 * width
        self.stem = conv_bn_act(in_channels, w1, 5)
        self.residual = nn.Conv2d(w1, residual_channels, 1)
        self.pools = nn.ModuleList([nn.MaxPool2d(2) for _ in range(3)])
        self.down = nn.ModuleList(
            [
                FRRU(w1, w1, residual_channels, 2),
                FRRU(w1, w2, residual_channels, 4),
                FRRU(w2, w2, residual_channels, 8),
            ]
        )
        self.ups = nn.ModuleList([nn.Upsample(scale_factor=2, mode="bilinear") for _ in range(3)])
        self.up = nn.ModuleList([FRRU(w2, w2, residual_channels, 4), FRRU(w2, w1, residual_channels, 2)])
        self.head = nn.Sequential(conv_bn_act(w1 + residual_channels, w1), nn.Conv2d(w1, num_classes, 1))
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.stem(x)
        y = self.residual(z)
        for pool, unit in zip(self.pools, self.down, strict=True):
            z, y = unit(pool(z), y)
        for upsample, unit in zip(self.ups[:-1], self.up, strict=True):
            z, y = unit(upsample(z), y)
        return self.head(torch.cat([self.ups[-1](z), y], dim=1))


@register_model("frrnet", task="segmentation")
def frrnet(
    *, num_classes: int, in_channels: int, input_size: int, width: int = 8, residual_channels: int = 8
) -> FRRNet:
    """FRRNet-like two-stream net giving [B, num_classes, H, W] logits; input_size a multiple of 8."""
    check_int_range("width", width, 1, 4096)
    check_int_range("residual_channels", residual_channels, 1, 4096)
    if input_size % 8:
        raise ConfigError(f"frrnet needs input_size a multiple of 8, got {input_size}")
    return FRRNet(num_classes, in_channels, width, residual_channels)
