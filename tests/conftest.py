"""Shared fixtures: tiny models and in-memory loaders so unit tests stay fast."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


class TinyCNN(nn.Module):
    """Conv-BN-ReLU x2 + linear head: small enough for second-long tests."""

    def __init__(self, in_channels: int = 1, num_classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, stride=2)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def make_blobs(n: int = 256, num_classes: int = 4, shape=(1, 8, 8), seed: int = 0) -> TensorDataset:
    """Learnable toy images: one fixed random prototype per class plus noise."""
    gen = torch.Generator().manual_seed(seed)
    prototypes = torch.randn(num_classes, *shape, generator=gen)
    labels = torch.randint(0, num_classes, (n,), generator=gen)
    images = prototypes[labels] + 0.5 * torch.randn(n, *shape, generator=gen)
    return TensorDataset(images, labels)


@pytest.fixture
def tiny_model() -> TinyCNN:
    torch.manual_seed(0)
    return TinyCNN()


@pytest.fixture
def tiny_model_class() -> type[TinyCNN]:
    return TinyCNN


@pytest.fixture
def blob_loaders() -> tuple[DataLoader, DataLoader]:
    train = DataLoader(
        make_blobs(256, seed=0), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    val = DataLoader(make_blobs(128, seed=0), batch_size=64)
    return train, val
