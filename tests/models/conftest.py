"""Fixtures shared by the model tests: each zoo model's natural input, non-trivial BN state, output checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

NATURAL_SHAPES: dict[str, tuple[int, int]] = {
    "lenet5": (1, 28),
    "small_cnn": (1, 28),
    "resnet20": (3, 32),
    "resnet32": (3, 32),
    "resnet44": (3, 32),
    "resnet56": (3, 32),
    "resnet110": (3, 32),
    "vgg11": (3, 32),
    "vgg16": (3, 32),
    "mobilenetv2": (3, 32),
    "densenet": (3, 32),
}
"""(in_channels, input_size) per zoo model; test_zoo checks that every registered model is listed."""


@pytest.fixture
def natural_shapes() -> dict[str, tuple[int, int]]:
    return dict(NATURAL_SHAPES)


@pytest.fixture(params=sorted(NATURAL_SHAPES))
def zoo_name(request: pytest.FixtureRequest) -> str:
    """Each zoo model name in turn."""
    return request.param


@pytest.fixture
def zoo_kwargs() -> Callable[[str], dict[str, int]]:
    """`build` kwargs for a zoo model's natural input shape."""
    return lambda name: {"in_channels": NATURAL_SHAPES[name][0], "input_size": NATURAL_SHAPES[name][1]}


@pytest.fixture
def zoo_input() -> Callable[..., torch.Tensor]:
    """A seeded random batch in a zoo model's natural input shape."""

    def make(name: str, batch: int = 2) -> torch.Tensor:
        channels, size = NATURAL_SHAPES[name]
        return torch.randn(batch, channels, size, size, generator=torch.Generator().manual_seed(0))

    return make


@pytest.fixture
def randomize_bn() -> Callable[[nn.Module], nn.Module]:
    """Give every BatchNorm non-default statistics and affine terms, so a lost buffer changes the output."""

    def randomize(model: nn.Module) -> nn.Module:
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                    for tensor in (module.running_mean, module.running_var, module.weight, module.bias):
                        tensor.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
        return model

    return randomize


@pytest.fixture
def assert_same_outputs() -> Callable[[nn.Module, nn.Module, torch.Tensor], None]:
    """Check that two models give bit-identical eval-mode outputs on `x`."""

    def check(expected: nn.Module, actual: nn.Module, x: torch.Tensor) -> None:
        with torch.no_grad():
            assert torch.equal(expected.eval()(x), actual.eval()(x))

    return check
