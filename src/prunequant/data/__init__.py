"""Datasets as normalised in-memory splits: one file per family, each registering its loader by name."""

from prunequant.data import (  # noqa: F401  (register the families, generated scenes included)
    cifar,
    digits,
    fashion_scenes,
    flying_fashion,
    idx,
    imagefolder,
    synthetic,
)
from prunequant.data.augment import RandomCropFlip
from prunequant.data.loaders import Loaders, make_loaders
from prunequant.data.registry import available_datasets, load_dataset, register_dataset
from prunequant.data.splits import DatasetSplits, RawDataset

__all__ = [
    "DatasetSplits",
    "Loaders",
    "RandomCropFlip",
    "RawDataset",
    "available_datasets",
    "load_dataset",
    "make_loaders",
    "register_dataset",
]
