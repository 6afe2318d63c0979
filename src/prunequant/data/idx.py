"""MNIST and Fashion-MNIST from their IDX files (gzipped or raw), parsed and validated with numpy."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from prunequant.data.locate import find_data_dir
from prunequant.data.registry import register_dataset
from prunequant.data.splits import RawDataset
from prunequant.errors import ConfigError, DataError

_UBYTE = 0x08
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
_ALL_FILES = ", ".join(stem + ".gz" for pair in _FILES.values() for stem in pair)
EXPECTED_IDX = (
    f"the four IDX files ({', '.join(stem for pair in _FILES.values() for stem in pair)}, raw or .gz)"
)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an unsigned-byte IDX file with `ndim` dimensions; DataError naming the file if it is bad."""
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read this IDX file ({exc}); download it again") from None
    header = 4 + 4 * ndim
    if len(data) < header or data[:2] != b"\0\0" or data[2] != _UBYTE or data[3] != ndim:
        raise DataError(
            f"{path}: not an IDX file of unsigned bytes with {ndim} dimensions "
            f"(header {data[:4].hex() or 'empty'}); download it again"
        )
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != math.prod(dims):
        raise DataError(
            f"{path}: holds {len(data) - header} data bytes but its header says "
            f"{'x'.join(map(str, dims))}; the file is truncated or corrupt, download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _file(folder: Path, stem: str) -> Path:
    """The raw file `stem` in `folder` if present, else its gzipped version (which may not exist)."""
    raw = folder / stem
    return raw if raw.is_file() else folder / f"{stem}.gz"


def _holds_idx(folder: Path) -> bool:
    return all(_file(folder, stem).is_file() for pair in _FILES.values() for stem in pair)


def _read_split(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    images_path, labels_path = (_file(folder, stem) for stem in _FILES[split])
    images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
    if len(images) != len(labels):
        raise DataError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "the two files do not belong together"
        )
    return images[:, None], labels


def _register_idx(
    name: str, *, classes: tuple[str, ...], mean: float, std: float, how_to_get: str, layout: str
) -> None:
    """Register `name` as a folder of the four IDX files; `layout` is torchvision's sub-folder for it."""

    @register_dataset(name)
    def load(data_dir: Path | None, seed: int, normalize: bool = True) -> RawDataset:
        """The IDX files as a RawDataset; `normalize=False` serves pixels in [0, 1] (mean 0, std 1), as a
        VAE with a Bernoulli (BCE) likelihood needs, instead of (x - mean) / std."""
        if not isinstance(normalize, bool):
            raise ConfigError(f"normalize must be true or false, got {normalize!r}")
        folder = find_data_dir(
            name,
            data_dir,
            holds_data=_holds_idx,
            how_to_get=how_to_get,
            expected=EXPECTED_IDX,
            layouts=("", layout),
        )
        train_images, train_labels = _read_split(folder, "train")
        test_images, test_labels = _read_split(folder, "test")
        stats = ((mean,), (std,)) if normalize else ((0.0,), (1.0,))
        return RawDataset(train_images, train_labels, classes, test_images, test_labels, *stats)


_register_idx(
    "fashion-mnist",
    classes=_FASHION_CLASSES,
    mean=0.2860,
    std=0.3530,
    how_to_get=f"apt-get install dataset-fashion-mnist, or download the four IDX files ({_ALL_FILES})",
    layout="FashionMNIST/raw",
)
_register_idx(
    "mnist",
    classes=tuple(str(digit) for digit in range(10)),
    mean=0.1307,
    std=0.3081,
    how_to_get=f"download the four MNIST IDX files ({_ALL_FILES})",
    layout="MNIST/raw",
)
