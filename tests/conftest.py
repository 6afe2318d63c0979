"""Shared fixtures: tiny models and in-memory loaders so unit tests stay fast."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from prunequant.tasks import MetricSpec, Task


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


# ---- a two-input dense regressor and its task: the non-classification stand-in of the spine tests ---------


class TwoInputRegressor(nn.Module):
    """Image (3 ch) and sparse depth (1 ch) -> a dense 2-channel map, like a tiny scene-flow network."""

    def __init__(self) -> None:
        super().__init__()
        self.image_conv = nn.Conv2d(3, 8, 3, padding=1)
        self.image_bn = nn.BatchNorm2d(8)
        self.depth_conv = nn.Conv2d(1, 4, 3, padding=1)
        self.depth_bn = nn.BatchNorm2d(4)
        self.fuse = nn.Conv2d(12, 8, 3, padding=1)
        self.fuse_bn = nn.BatchNorm2d(8)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.image_bn(self.image_conv(image)))
        b = torch.relu(self.depth_bn(self.depth_conv(depth)))
        return self.head(torch.relu(self.fuse_bn(self.fuse(torch.cat([a, b], 1)))))


class DenseRegressor(nn.Module):
    """One-input dense regressor (3 ch -> 2 ch) for the parts that take one input today (quantize)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu1(self.bn1(self.conv1(image))))


class _ErrorState:
    """Mean squared and mean absolute error over every element seen."""

    def __init__(self) -> None:
        self.squared, self.absolute, self.count = 0.0, 0.0, 0

    def update(self, outputs: torch.Tensor, target: torch.Tensor) -> None:
        diff = (outputs.detach().float() - target.float()).flatten()
        self.squared += float(diff.pow(2).sum())
        self.absolute += float(diff.abs().sum())
        self.count += diff.numel()

    def compute(self) -> dict[str, float]:
        n = max(1, self.count)
        return {"mse": self.squared / n, "mae": self.absolute / n}


class ToyRegressionTask(Task):
    """A user task: MSE loss, metrics mse (primary) and mae, both lower-is-better."""

    name = "toy_regression"
    metrics = (
        MetricSpec("mse", "", False, "mean squared error"),
        MetricSpec("mae", "px", False, "mean absolute error"),
    )
    primary = "mse"

    def loss(self, outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(outputs, target)

    def metric_state(self) -> _ErrorState:
        return _ErrorState()


def make_flow(n: int = 128, seed: int = 0, *, two_inputs: bool = True) -> TensorDataset:
    """(image, depth, target) samples whose target is a fixed local function of both inputs; with
    two_inputs=False, (image, target) with the depth folded into the image's third channel."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randn(n, 3, 8, 8, generator=gen)
    depth = torch.randn(n, 1, 8, 8, generator=gen) * (torch.rand(n, 1, 8, 8, generator=gen) < 0.5)
    if not two_inputs:
        depth = image[:, 2:3]
    target = torch.cat([image[:, :1] + depth, torch.relu(image[:, 1:2]) - 0.5 * depth], 1)
    return TensorDataset(image, depth, target) if two_inputs else TensorDataset(image, target)


@pytest.fixture
def regression_task() -> ToyRegressionTask:
    return ToyRegressionTask()


@pytest.fixture
def two_input_model() -> TwoInputRegressor:
    torch.manual_seed(0)
    return TwoInputRegressor()


@pytest.fixture
def dense_model() -> DenseRegressor:
    torch.manual_seed(0)
    return DenseRegressor()


@pytest.fixture
def flow_loaders() -> tuple[DataLoader, DataLoader]:
    """Train / val loaders of (image, depth, target) batches."""
    return _loaders(two_inputs=True)


@pytest.fixture
def dense_loaders() -> tuple[DataLoader, DataLoader]:
    """Train / val loaders of (image, target) batches for the one-input DenseRegressor."""
    return _loaders(two_inputs=False)


def _loaders(*, two_inputs: bool) -> tuple[DataLoader, DataLoader]:
    data = make_flow(128, 1, two_inputs=two_inputs)
    train = DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    return train, DataLoader(make_flow(64, 2, two_inputs=two_inputs), batch_size=32)
