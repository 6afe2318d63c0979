"""A small DeepLiDARFlow (Rishav et al. 2020; seed 000): scene flow from an image pair and sparse depth.

Top-level modules follow seed 000's Table I groups, so `profile` prints them:

- `feature_pyramid` (FPN): `image`, one shared encoder run on both frames at once (they are stacked on
  the batch axis), and `depth`, an encoder of the sparse depth and its validity mask; 3 levels (1/2,
  1/4, 1/8);
- `fusion` (FM): per level, the depth features are fused into frame 1's image features;
- `cost_volume` (CV): parameter-free local correlation of fused frame 1 with frame 2 at each level;
- `scene_flow` (SF): coarse-to-fine decoder; each level predicts flow from its features, correlation and
  the upsampled coarser flow and features (transposed conv), as a residual on the coarser flow;
- `context` (CN): dilated convs that refine the finest flow, then `upsample` to full resolution.

There is no warping module (Table I's warping has no parameters either): without it, each level's
correlation window covers the flows of fashion-mnist scale scenes (+-4 px at 1/2, +-8 at 1/4, +-24 at 1/8).
forward(frames [B, 2C, H, W], sparse_depth [B, 1, H, W]) -> flow [B, out_channels, H, W] in pixels, in
training and eval alike. H and W must be multiples of 8.
"""

from __future__ import annotations

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.models.layers import conv_bn_act, init_conv_weights
from prunequant.models.registry import register_model
from prunequant.validation import check_int_range

_LEVELS = 3
_DISPLACEMENTS = (2, 2, 3)
"""Correlation radius per level (1/2, 1/4, 1/8), in that level's pixels."""


class Encoder(nn.Module):
    """Three stride-2 stages of two conv-BN-LeakyReLU; returns the features at 1/2, 1/4 and 1/8."""

    def __init__(self, in_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        for w in widths:
            self.stages.append(
                nn.Sequential(
                    conv_bn_act(in_channels, w, stride=2, activation=nn.LeakyReLU),
                    conv_bn_act(w, w, activation=nn.LeakyReLU),
                )
            )
            in_channels = w

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class FeaturePyramid(nn.Module):
    """Image pyramid (shared by both frames) and sparse-depth pyramid."""

    def __init__(self, frame_channels: int, widths: tuple[int, ...], depth_widths: tuple[int, ...]) -> None:
        super().__init__()
        self.frame_channels = frame_channels
        self.image = Encoder(frame_channels, widths)
        self.depth = Encoder(2, depth_widths)

    def forward(
        self, frames: torch.Tensor, sparse_depth: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        c = self.frame_channels
        both = torch.cat([frames[:, :c], frames[:, c:]], dim=0)  # one pass, shared weights, both frames
        valid = (sparse_depth > 0).to(sparse_depth.dtype)
        pairs = [level.chunk(2, dim=0) for level in self.image(both)]
        depth = self.depth(torch.cat([sparse_depth, valid], dim=1))
        return [p[0] for p in pairs], [p[1] for p in pairs], depth


class Fuse(nn.Module):
    """1x1 conv over [image, depth] features, then a 3x3 conv, added to the image features."""

    def __init__(self, channels: int, depth_channels: int) -> None:
        super().__init__()
        self.mix = conv_bn_act(channels + depth_channels, channels, 1, activation=nn.LeakyReLU)
        self.refine = conv_bn_act(channels, channels, activation=nn.LeakyReLU)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return image + self.refine(self.mix(torch.cat([image, depth], dim=1)))


class Fusion(nn.Module):
    """One `Fuse` per pyramid level."""

    def __init__(self, widths: tuple[int, ...], depth_widths: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = nn.ModuleList(Fuse(w, d) for w, d in zip(widths, depth_widths, strict=True))

    def forward(self, image: list[torch.Tensor], depth: list[torch.Tensor]) -> list[torch.Tensor]:
        return [fuse(i, d) for fuse, i, d in zip(self.levels, image, depth, strict=True)]


class Correlation(nn.Module):
    """Mean over channels of f1 * shifted f2 for every shift in [-d, d]^2: (2d+1)^2 channels, no weights."""

    def __init__(self, max_displacement: int) -> None:
        super().__init__()
        self.max_displacement = max_displacement
        self.pad = nn.ZeroPad2d(max_displacement)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
        d = self.max_displacement
        padded = self.pad(f2)
        span = 2 * d
        windows = [
            padded[:, :, dy : dy - span or None, dx : dx - span or None]
            for dy in range(span + 1)
            for dx in range(span + 1)
        ]
        return (f1.unsqueeze(2) * torch.stack(windows, dim=2)).mean(dim=1)


class CostVolume(nn.Module):
    """One `Correlation` per level."""

    def __init__(self, displacements: tuple[int, ...]) -> None:
        super().__init__()
        self.levels = nn.ModuleList(Correlation(d) for d in displacements)

    def forward(self, f1: list[torch.Tensor], f2: list[torch.Tensor]) -> list[torch.Tensor]:
        return [corr(a, b) for corr, a, b in zip(self.levels, f1, f2, strict=True)]


class FlowLevel(nn.Module):
    """Decoder of one level: three conv-BN-LeakyReLU over its inputs, a 3x3 conv to flow (a residual on the
    upsampled coarser flow, if any). Returns (flow, features)."""

    def __init__(self, in_channels: int, width: int, out_channels: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            conv_bn_act(in_channels, 2 * width, activation=nn.LeakyReLU),
            conv_bn_act(2 * width, width, activation=nn.LeakyReLU),
            conv_bn_act(width, width, activation=nn.LeakyReLU),
        )
        self.predict = nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.convs(x)
        return self.predict(features), features


class SceneFlowDecoder(nn.Module):
    """Coarse to fine over the levels; between levels the flow is upsampled bilinearly and the features by
    a stride-2 transposed conv. Returns (finest flow at 1/2, its features)."""

    def __init__(self, widths: tuple[int, ...], out_channels: int, width: int) -> None:
        super().__init__()
        costs = [(2 * d + 1) ** 2 for d in _DISPLACEMENTS]
        coarse = _LEVELS - 1
        self.levels = nn.ModuleList()
        for level in range(coarse, -1, -1):
            extra = 0 if level == coarse else out_channels + width
            self.levels.append(FlowLevel(widths[level] + costs[level] + extra, width, out_channels))
        self.upsample_flow = nn.ModuleList(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False) for _ in range(coarse)
        )
        self.upsample_features = nn.ModuleList(
            nn.ConvTranspose2d(width, width, 4, stride=2, padding=1) for _ in range(coarse)
        )

    def forward(
        self, fused: list[torch.Tensor], costs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        flow, features = self.levels[0](torch.cat([fused[-1], costs[-1]], dim=1))
        for i, (up_flow, up_features) in enumerate(
            zip(self.upsample_flow, self.upsample_features, strict=True)
        ):
            level = _LEVELS - 2 - i
            coarse_flow = up_flow(flow)
            inputs = [fused[level], costs[level], coarse_flow, up_features(features)]
            delta, features = self.levels[i + 1](torch.cat(inputs, dim=1))
            flow = coarse_flow + delta
        return flow, features


class ContextNetwork(nn.Module):
    """PWC-Net's context network, small: dilated 3x3 convs (1, 2, 4, 1) over [features, flow] giving a
    flow residual."""

    def __init__(self, width: int, out_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = width + out_channels
        for dilation in (1, 2, 4, 1):
            layers += [nn.Conv2d(channels, width, 3, padding=dilation, dilation=dilation), nn.LeakyReLU(0.1)]
            channels = width
        layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
        self.convs = nn.Sequential(*layers)

    def forward(self, flow: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return flow + self.convs(torch.cat([features, flow], dim=1))


class LiDARFlow(nn.Module):
    """See the module docstring."""

    def __init__(self, frame_channels: int = 3, width: int = 8, out_channels: int = 2) -> None:
        super().__init__()
        widths = (width, 2 * width, 3 * width)
        depth_widths = (width // 2 or 1, width, 2 * width)
        self.feature_pyramid = FeaturePyramid(frame_channels, widths, depth_widths)
        self.fusion = Fusion(widths, depth_widths)
        self.cost_volume = CostVolume(_DISPLACEMENTS)
        self.scene_flow = SceneFlowDecoder(widths, out_channels, 2 * width)
        self.context = ContextNetwork(2 * width, out_channels)
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        init_conv_weights(self)

    def forward(self, frames: torch.Tensor, sparse_depth: torch.Tensor) -> torch.Tensor:
        image1, image2, depth = self.feature_pyramid(frames, sparse_depth)
        fused = self.fusion(image1, depth)
        costs = self.cost_volume(fused, image2)
        flow, features = self.scene_flow(fused, costs)
        return self.upsample(self.context(flow, features))


@register_model("lidarflow", task="flow")
def lidarflow(
    *, num_classes: int, in_channels: int, input_size: int, width: int = 8, out_channels: int = 2
) -> LiDARFlow:
    """LiDARFlow for two frames of `in_channels` each (flying-fashion: 3) plus sparse depth.

    `out_channels` is 2 (flow) or 3 (flow and change of depth, flying-fashion's depth_change=True).
    `num_classes` is not used (flow has no classes); input_size must be a multiple of 8.
    """
    check_int_range("width", width, 2, 4096)
    check_int_range("out_channels", out_channels, 2, 3)
    if input_size % 8:
        raise ConfigError(f"lidarflow needs input_size a multiple of 8, got {input_size}")
    return LiDARFlow(in_channels, width, out_channels)
