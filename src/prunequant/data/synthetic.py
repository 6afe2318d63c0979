"""A learnable synthetic dataset for tests and speed benchmarks: class prototypes plus Gaussian noise."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from prunequant.data.registry import register_dataset
from prunequant.data.splits import RawDataset
from prunequant.errors import ConfigError
from prunequant.validation import check_int_range, check_positive

_COARSE = 4  # prototypes are 4x4 random patterns per channel, upsampled, plus a per-channel offset


def _prototypes(rng: np.random.Generator, num_classes: int, shape: tuple[int, int, int]) -> np.ndarray:
    """One fixed image per class: a coarse spatial pattern (for any CNN) plus a per-channel colour
    (which survives global average pooling)."""
    channels, height, width = shape
    coarse = rng.standard_normal((num_classes, channels, _COARSE, _COARSE), dtype=np.float32)
    rows, cols = np.arange(height) * _COARSE // height, np.arange(width) * _COARSE // width
    colour = rng.standard_normal((num_classes, channels, 1, 1), dtype=np.float32)
    return coarse[:, :, rows][:, :, :, cols] + colour


def _shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(input_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ConfigError(
            f"input_shape must be three positive ints C,H,W like (3, 32, 32), got {input_shape!r}"
        )
    return shape  # type: ignore[return-value]


@register_dataset("synthetic", reads_files=False)
def load_synthetic(
    data_dir: Path | None,
    seed: int,
    *,
    num_classes: int = 10,
    input_shape: Sequence[int] = (3, 32, 32),
    size: int = 512,
    noise: float = 1.0,
) -> RawDataset:
    """`size` training and `size // 4` test images: a seeded prototype per class plus noise of std `noise`."""
    check_int_range("num_classes", num_classes, 2, 100_000)
    check_int_range("size", size, 1, 10_000_000)
    noise = check_positive("noise", noise)
    shape = _shape(input_shape)
    rng = np.random.default_rng(seed)
    prototypes = _prototypes(rng, num_classes, shape)

    def sample(count: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(num_classes, size=count)
        return prototypes[labels] + noise * rng.standard_normal((count, *shape), dtype=np.float32), labels

    train_images, train_labels = sample(size)
    test_images, test_labels = sample(max(1, size // 4))
    classes = tuple(str(i) for i in range(num_classes))
    return RawDataset(train_images, train_labels, classes, test_images, test_labels)
