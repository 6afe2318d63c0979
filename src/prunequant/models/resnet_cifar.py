"""CIFAR ResNets of He et al. 2016 (resnet20/32/44/56/110) with 1x1 projection shortcuts (option B), or
with `shortcut="A"`: the paper's parameter-free shortcuts (stride-2 subsampling, zero-padded channels)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from prunequant.models.codecs import register_module_codec
from prunequant.models.layers import init_conv_weights
from prunequant.models.registry import register_model

DEPTHS = (20, 32, 44, 56, 110)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus shortcut (identity, or 1x1 conv + BN if the shape changes), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, shortcut: str = "B") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if (stride != 1 or in_channels != out_channels) and shortcut == "A":
            self.shortcut = ZeroPadShortcut(stride, out_channels - in_channels)
        elif stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ZeroPadShortcut(nn.Module):
    """Option A: subsample by `stride` and pad zero channels: `front` before and `back` after the input's.

    Parameters
    ----------
    stride:
        Spatial subsampling step.
    extra:
        Zero channels to add, half before and half after (the paper's layout); used where `front` or
        `back` is not given.
    front, back:
        Explicit zero-channel counts before and after (channel pruning rewrites them).
    """

    def __init__(
        self, stride: int, extra: int = 0, *, front: int | None = None, back: int | None = None
    ) -> None:
        super().__init__()
        self.stride = stride
        self.front = extra // 2 if front is None else front
        self.back = extra - extra // 2 if back is None else back
        if min(self.stride - 1, self.front, self.back) < 0:
            raise ValueError(f"ZeroPadShortcut needs stride >= 1 and counts >= 0, got {self.extra_repr()}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.front, self.back))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, front={self.front}, back={self.back}"


register_module_codec(
    ZeroPadShortcut,
    lambda pad: {"stride": pad.stride, "front": pad.front, "back": pad.back},
    lambda config: ZeroPadShortcut(**config),
)


class CifarResNet(nn.Module):
    """conv3x3(16) stem, three stages of (depth - 2) / 6 BasicBlocks at 16/32/64 channels, global pool, fc."""

    def __init__(self, depth: int, num_classes: int = 10, in_channels: int = 3, shortcut: str = "B") -> None:
        super().__init__()
        if shortcut not in ("A", "B"):
            raise ValueError(f"shortcut must be 'A' (zero padding) or 'B' (1x1 projection), got {shortcut!r}")
        self.shortcut_kind = shortcut
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._stage(16, 16, blocks, stride=1)
        self.layer2 = self._stage(16, 32, blocks, stride=2)
        self.layer3 = self._stage(32, 64, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        init_conv_weights(self)

    def _stage(self, in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
        first = BasicBlock(in_channels, out_channels, stride, self.shortcut_kind)
        return nn.Sequential(first, *(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _register(depth: int) -> None:
    @register_model(f"resnet{depth}")
    def factory(*, num_classes: int, in_channels: int, input_size: int, shortcut: str = "B") -> CifarResNet:
        return CifarResNet(depth, num_classes, in_channels, shortcut)

    factory.__doc__ = (
        f"CIFAR ResNet-{depth}; any input_size works (global average pooling); shortcut 'B' (1x1 projection, "
        "default) or 'A' (zero-padded channels)."
    )


for _depth in DEPTHS:
    _register(_depth)
