"""Export-test fixtures: a trained tiny CNN, its PTQ 8/8 fake-quant copy, settled BN statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunequant.data import load_dataset, make_loaders
from prunequant.models import build
from prunequant.quantization import QuantConfig, quantize
from prunequant.training import TrainConfig, Trainer

SAMPLE_SHAPE = (1, 8, 8)


def settle_batchnorm(model: nn.Module, sample_shape: tuple[int, ...], seed: int = 0) -> nn.Module:
    """Give every BatchNorm the statistics of one random batch, so deep random nets have sane logits."""
    for norm in model.modules():
        if isinstance(norm, nn.modules.batchnorm._BatchNorm):
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model(torch.randn(16, *sample_shape, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


@pytest.fixture(scope="package")
def blob_data():
    """Loaders of the learnable synthetic set: 4 classes of 1x8x8 images; 1229 train, 307 val, 384 test."""
    splits = load_dataset(
        "synthetic", seed=0, val_fraction=0.2, num_classes=4, input_shape=SAMPLE_SHAPE, size=1536, noise=0.5
    )
    return make_loaders(splits, batch_size=64, seed=0)


def tiny_cnn(seed: int = 0) -> nn.Module:
    """The zoo's small_cnn at width 4 for 4-class 1x8x8 inputs (conv-BN-ReLU, max pools, MLP head)."""
    torch.manual_seed(seed)
    return build("small_cnn", num_classes=4, in_channels=1, input_size=8, width=4, dropout=0.0)


@pytest.fixture(scope="package")
def trained_tiny(blob_data) -> nn.Module:
    """`tiny_cnn()` trained on 12 batches of `blob_data` (about 85% test accuracy)."""
    model = tiny_cnn()
    config = TrainConfig(epochs=1, lr=0.1, lr_schedule="constant", max_batches_per_epoch=12)
    Trainer(model, blob_data.train, blob_data.val, config).fit()
    return model.eval()


@pytest.fixture(scope="package")
def quantized_tiny(trained_tiny, blob_data) -> nn.Module:
    """`trained_tiny` quantized post-training to 8-bit weights and activations (4 calibration batches)."""
    return quantize(trained_tiny, QuantConfig(w_bits=8, a_bits=8), blob_data.train, calib_batches=4)
