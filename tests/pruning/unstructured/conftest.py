"""Fixtures for the unstructured-pruning tests: exact weight counts of the shared TinyCNN, zero counting."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch import nn

# TinyCNN (tests/conftest.py): conv1 8x1x3x3, conv2 16x8x3x3, fc 4x16.
WEIGHT_NUMELS = {"conv1.weight": 72, "conv2.weight": 1152, "fc.weight": 64}


def _zeros(tensor: torch.Tensor) -> int:
    return int(tensor.numel() - torch.count_nonzero(tensor))


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor for name, tensor in model.state_dict().items() if name in WEIGHT_NUMELS}


@pytest.fixture
def tiny() -> SimpleNamespace:
    """`numels` of the TinyCNN weights, `zeros(t)` exact zero count, `weights(model)` its weight tensors."""
    return SimpleNamespace(numels=dict(WEIGHT_NUMELS), zeros=_zeros, weights=_weights)
