"""VGG-11/16 (Simonyan & Zisserman 2015), with or without BatchNorm, with a CIFAR or an ImageNet head.

Module names match torchvision's vgg11/vgg16(_bn) (`features.N`, `classifier.N`), so its ImageNet
state_dicts load with `load_checkpoint(path, model=build("vgg16", head="imagenet", num_classes=1000, ...))`.
"""

from __future__ import annotations

import torch
from torch import nn

from prunequant.models.layers import init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_choice

POOL = 0
CONFIGS: dict[str, list[int]] = {
    "vgg11": [64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL],
    "vgg16": [64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL],
}
HEADS = {"cifar": (1, (512,)), "imagenet": (7, (4096, 4096))}
"""head -> (side of the adaptive average pool, hidden widths of the classifier)."""


class VGG(nn.Module):
    """Conv3x3 features, 2x2 max pools (ceil mode: small inputs never shrink to zero) -> pool -> MLP."""

    def __init__(
        self, config: list[int], num_classes: int, in_channels: int, *, batch_norm: bool, head: str
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in config:
            if width == POOL:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
                continue
            layers.append(nn.Conv2d(channels, width, 3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            channels = width
        self.features = nn.Sequential(*layers)
        side, hidden = HEADS[head]
        self.avgpool = nn.AdaptiveAvgPool2d(side)
        classifier: list[nn.Module] = []
        features = channels * side * side
        for width in hidden:
            classifier += [nn.Linear(features, width), nn.ReLU(), nn.Dropout(0.5)]
            features = width
        self.classifier = nn.Sequential(*classifier, nn.Linear(features, num_classes))
        init_conv_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def _register(name: str) -> None:
    @register_model(name)
    def factory(
        *,
        num_classes: int,
        in_channels: int,
        input_size: int,
        batch_norm: bool = True,
        head: str | None = None,
    ) -> VGG:
        head = head or ("imagenet" if input_size >= 200 else "cifar")
        check_choice("head", head, list(HEADS))
        return VGG(CONFIGS[name], num_classes, in_channels, batch_norm=batch_norm, head=head)

    factory.__doc__ = (
        f"{name.upper()}; head 'cifar' (global pool, 512-unit MLP; default below input_size 200) or "
        "'imagenet' (7x7 pool, 4096-4096 MLP); batch_norm=False gives the original BN-free network."
    )


for _name in CONFIGS:
    _register(_name)
