"""The stand-in architectures, each a `module:factory` the lab rebuilds in every trial."""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class FlowNet(nn.Module):
    """Seed 000 (DeepLiDARFlow) in miniature: an image and a sparse depth map in, dense 2-channel flow out."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.image = _block(3, width)
        self.depth = _block(1, width)
        self.fuse = _block(2 * width, width)
        self.head = nn.Conv2d(width, 2, 3, padding=1)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.head(self.fuse(torch.cat([self.image(image), self.depth(depth)], 1)))


class UNet(nn.Module):
    """Seed 003's UNet in miniature: two levels, concatenated skips, per-pixel class logits."""

    def __init__(self, classes: int = 3, width: int = 8) -> None:
        super().__init__()
        self.enc1, self.enc2 = _block(3, width), _block(width, 2 * width)
        self.pool, self.up = nn.MaxPool2d(2), nn.Upsample(scale_factor=2, mode="nearest")
        self.dec1 = _block(3 * width, width)
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.enc1(x)
        deep = self.enc2(self.pool(skip))
        return self.head(self.dec1(torch.cat([self.up(deep), skip], 1)))


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, width, 3),
            nn.InstanceNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """Seed 003's CycleGAN generator in miniature: reflection padding, instance norm, residual blocks,
    a transposed-conv upsampler and a tanh output."""

    def __init__(self, width: int = 8, blocks: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(3, width, 3),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, 2, 1),
            nn.InstanceNorm2d(2 * width),
            nn.ReLU(),
            *[Residual(2 * width) for _ in range(blocks)],
            nn.ConvTranspose2d(2 * width, width, 3, 2, 1, output_padding=1),
            nn.InstanceNorm2d(width),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(width, 3, 3),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvVAE(nn.Module):
    """Seed 003's LeNet-like conv VAE: returns (reconstruction, mu, logvar); samples only in training."""

    def __init__(self, latent: int = 4, width: int = 8, size: int = 8) -> None:
        super().__init__()
        self.size, self.width = size, width
        self.enc = nn.Sequential(nn.Conv2d(1, width, 3, 2, 1), nn.ReLU(), nn.Flatten())
        features = width * (size // 2) ** 2
        self.mu, self.logvar = nn.Linear(features, latent), nn.Linear(features, latent)
        self.dec_fc = nn.Linear(latent, features)
        self.dec = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        h = self.dec_fc(z).view(-1, self.width, self.size // 2, self.size // 2)
        return self.dec(h), mu, logvar


class TwoHeadDetector(nn.Module):
    """Seed 004's YOLOv3 in miniature: a backbone and two heads (strides 2 and 4), each cell predicting
    (objectness, cx, cy, w, h) with one anchor; returns the tuple of both head maps."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.stem = _block(3, width, 2)
        self.down = _block(width, 2 * width, 2)
        self.head1 = nn.Conv2d(width, 5, 1)
        self.head2 = nn.Conv2d(2 * width, 5, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fine = self.stem(x)
        return self.head1(fine), self.head2(self.down(fine))


def flow_net(width: int = 8) -> nn.Module:
    return FlowNet(width)


def unet(classes: int = 3, width: int = 8) -> nn.Module:
    return UNet(classes, width)


def generator(width: int = 8, blocks: int = 2) -> nn.Module:
    return Generator(width, blocks)


def conv_vae(latent: int = 4, width: int = 8, size: int = 8) -> nn.Module:
    return ConvVAE(latent, width, size)


def detector(width: int = 8) -> nn.Module:
    return TwoHeadDetector(width)
