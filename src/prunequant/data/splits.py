"""Turn a family's raw arrays into normalised train/val/test TensorDatasets (shared by every family)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset, TensorDataset

from prunequant.data.augment import RandomCropFlip
from prunequant.errors import ConfigError, DataError


@dataclass(frozen=True)
class DatasetSplits:
    """A loaded dataset: normalised float32 images (N,C,H,W) and int64 labels per split."""

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class RawDataset:
    """What a registered loader returns: whole splits as numpy arrays, before limit, split and scaling.

    Images are N,C,H,W: uint8 (scaled by 1/255) or float already in [0, 1]-like units. Labels are integers
    in [0, len(classes)). `mean`/`std` are per-channel after that scaling; None computes them from the
    training split. Without a test split, one of `test_fraction` is carved from train by seed. `augment`
    wraps the training split in a seeded random crop + horizontal flip.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    classes: tuple[str, ...]
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    test_fraction: float = 0.2
    augment: bool = False


def build_splits(
    name: str, raw: RawDataset, *, val_fraction: float, seed: int, limit: int | None
) -> DatasetSplits:
    """Carve test (if absent) and validation from train by `seed`, apply `limit`, normalise to tensors.

    `limit` caps the training pool (train + val) at `limit` samples and the test split in proportion.
    """
    rng = np.random.default_rng(seed)
    num_classes = len(raw.classes)
    train_x, train_y = _checked(name, "train", raw.train_images, raw.train_labels, num_classes)
    pool = rng.permutation(len(train_y))
    if raw.test_images is None or raw.test_labels is None:
        n_test = max(1, round(len(pool) * raw.test_fraction))
        test_x, test_y = train_x, train_y
        test_idx, pool = pool[:n_test], pool[n_test:]
    else:
        test_x, test_y = _checked(name, "test", raw.test_images, raw.test_labels, num_classes)
        test_idx = np.arange(len(test_y))
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DataError(
                f"{name}: test images are {test_x.shape[1:]} but train images are {train_x.shape[1:]}"
            )
    train_idx, val_idx, test_idx = carve(name, rng, pool, test_idx, val_fraction=val_fraction, limit=limit)
    train_images, train_labels = _subset(train_x, train_y, train_idx)
    mean, std = _stats(name, train_images, raw.mean, raw.std)
    train: Dataset = TensorDataset(_normalise(train_images, mean, std), train_labels)
    if raw.augment:
        train = RandomCropFlip(train, seed=seed)
    c, h, w = train_x.shape[1:]
    return DatasetSplits(
        name=name,
        train=train,
        val=_normalised_subset(train_x, train_y, val_idx, mean, std),
        test=_normalised_subset(test_x, test_y, test_idx, mean, std),
        num_classes=num_classes,
        input_shape=(int(c), int(h), int(w)),
        classes=tuple(raw.classes),
    )


def carve(
    name: str,
    rng: np.random.Generator,
    pool: np.ndarray,
    test_idx: np.ndarray,
    *,
    val_fraction: float,
    limit: int | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) indices: `limit` caps the shuffled training `pool` and shrinks the test split in
    proportion (drawn with `rng`); validation is the first `val_fraction` of what remains of the pool."""
    if limit is not None and limit < len(pool):
        keep = max(1, round(len(test_idx) * limit / len(pool)))
        test_idx = test_idx[rng.permutation(len(test_idx))[:keep]]
        pool = pool[:limit]
    n_val = round(len(pool) * val_fraction)
    if n_val >= len(pool):
        raise ConfigError(
            f"{name}: val_fraction={val_fraction} of {len(pool)} training samples leaves none to train on; "
            "lower val_fraction or raise limit"
        )
    return pool[n_val:], pool[:n_val], test_idx


def _checked(
    name: str, split: str, images: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes, dtypes and label range; return (images, int64 labels)."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or 0 in images.shape:
        raise DataError(f"{name}: {split} images must be a non-empty N,C,H,W array, got shape {images.shape}")
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise DataError(f"{name}: {split} images must be uint8 or float, got {images.dtype}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{name}: {split} has {len(images)} images but labels of shape {labels.shape} ({labels.dtype})"
        )
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(
            f"{name}: {split} labels span {labels.min()}..{labels.max()} but there are {num_classes} classes"
        )
    return images, labels.astype(np.int64)


def _subset(images: np.ndarray, labels: np.ndarray, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images (uint8 scaled by 1/255) and int64 labels at `idx`, kept in file order."""
    idx = np.sort(idx)
    tensor = torch.from_numpy(images[idx])
    tensor = tensor.float().div_(255.0) if tensor.dtype == torch.uint8 else tensor.float()
    return tensor, torch.from_numpy(labels[idx])


def _normalised_subset(
    images: np.ndarray, labels: np.ndarray, idx: np.ndarray, mean: torch.Tensor, std: torch.Tensor
) -> TensorDataset:
    subset_images, subset_labels = _subset(images, labels, idx)
    return TensorDataset(_normalise(subset_images, mean, std), subset_labels)


def _stats(
    name: str, train: torch.Tensor, mean: tuple[float, ...] | None, std: tuple[float, ...] | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std as (1,C,1,1) tensors: the given reference values, or computed from train."""
    channels = train.shape[1]
    mean_t = train.mean(dim=(0, 2, 3)) if mean is None else torch.tensor(mean, dtype=torch.float32)
    std_t = (
        train.std(dim=(0, 2, 3), unbiased=False) if std is None else torch.tensor(std, dtype=torch.float32)
    )
    if mean_t.numel() != channels or std_t.numel() != channels:
        raise DataError(
            f"{name}: mean/std have {mean_t.numel()}/{std_t.numel()} values for {channels} channels"
        )
    std_t = torch.where(std_t > 1e-8, std_t, torch.ones_like(std_t))  # a constant channel stays finite
    return mean_t.view(1, -1, 1, 1), std_t.view(1, -1, 1, 1)


def _normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return images.sub_(mean).div_(std)
