"""UNet (Ronneberger et al. 2015) for seed 003's segmentation: concat skips, transposed-conv upsampling."""

from __future__ import annotations

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models.layers import conv_bn_act, init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_int_range


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU layers, UNet's unit at every level."""
    return nn.Sequential(conv_bn_act(in_channels, out_channels), conv_bn_act(out_channels, out_channels))


class UNet(nn.Module):
    """`depth` encoder levels (width, 2*width, ...) with max-pool, a bottleneck, and a decoder that
    upsamples by a stride-2 transposed conv, concatenates the encoder skip and applies `double_conv`.

    Modules: `encoder.<i>`, `pools.<i>`, `bottleneck`, `upsample.<i>`, `decoder.<i>`, `head` (1x1 conv to
    `num_classes` logits at full resolution).
    """

    def __init__(self, num_classes: int = 11, in_channels: int = 3, width: int = 8, depth: int = 3) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.encoder = nn.ModuleList()
        self.pools = nn.ModuleList()
        previous = in_channels
        for w in widths[:-1]:
            self.encoder.append(double_conv(previous, w))
            self.pools.append(nn.MaxPool2d(2))
            previous = w
        self.bottleneck = double_conv(widths[-2], widths[-1])
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for w_low, w in zip(widths[:0:-1], widths[-2::-1], strict=True):
            self.upsample.append(nn.ConvTranspose2d(w_low, w, 2, stride=2))
            self.decoder.append(double_conv(2 * w, w))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for block, pool in zip(self.encoder, self.pools, strict=True):
            x = block(x)
            skips.append(x)
            x = pool(x)
        x = self.bottleneck(x)
        for up, block, skip in zip(self.upsample, self.decoder, reversed(skips), strict=True):
            x = block(torch.cat([up(x), skip], dim=1))
        return self.head(x)


@register_model("unet", task="segmentation")
def unet(*, num_classes: int, in_channels: int, input_size: int, width: int = 8, depth: int = 3) -> UNet:
    """UNet giving [B, num_classes, H, W] logits; input_size must be a multiple of 2**depth (64 for
    fashion-scenes with num_classes=11)."""
    check_int_range("width", width, 1, 4096)
    check_int_range("depth", depth, 1, 6)
    if input_size % 2**depth:
        raise ConfigError(
            f"unet with depth {depth} needs input_size a multiple of {2**depth}, got {input_size}"
        )
    return UNet(num_classes, in_channels, width, depth)
