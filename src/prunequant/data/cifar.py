"""CIFAR-10 and CIFAR-100 from the standard python-pickle batches, unpickled with a restricted unpickler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from prunequant.data.locate import find_data_dir
from prunequant.data.registry import register_dataset
from prunequant.data.splits import RawDataset
from prunequant.data.unpickle import load_pickle
from prunequant.errors import ConfigError, DataError

_IMAGE_BYTES = 3 * 32 * 32


def _field(path: Path, content: Any, key: bytes) -> Any:
    if not isinstance(content, dict) or key not in content:
        raise DataError(f"{path}: expected a dict with key {key.decode()!r}; is this the python version?")
    return content[key]


def read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Images (N,3,32,32 uint8) and int64 labels of one CIFAR batch file."""
    content = load_pickle(path)
    data, labels = _field(path, content, b"data"), _field(path, content, label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (_IMAGE_BYTES,):
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{path}: 'data' must be a uint8 array of N x {_IMAGE_BYTES}, got {shape}")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {label_key.decode()!r} must be a list of integers") from None
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {len(data)} images but {labels.size} {label_key.decode()!r}")
    return data.reshape(-1, 3, 32, 32), labels


def _read_names(path: Path, names_key: bytes) -> tuple[str, ...]:
    names = _field(path, load_pickle(path), names_key)
    if not isinstance(names, list) or not all(isinstance(n, bytes | str) for n in names):
        raise DataError(f"{path}: {names_key.decode()!r} must be a list of class names")
    return tuple(n.decode() if isinstance(n, bytes) else n for n in names)


def _register_cifar(
    name: str,
    *,
    folder_name: str,
    train_files: tuple[str, ...],
    test_file: str,
    meta_file: str,
    label_key: bytes,
    names_key: bytes,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
    archive: str,
) -> None:
    files = (*train_files, test_file, meta_file)
    how_to_get = (
        f"download {archive} from https://www.cs.toronto.edu/~kriz/cifar.html and extract it (the folder "
        f"{folder_name} holds {', '.join(files)})"
    )

    @register_dataset(name)
    def load(data_dir: Path | None, seed: int, *, augment: bool = False) -> RawDataset:
        if not isinstance(augment, bool):
            raise ConfigError(f"augment must be True or False, got {augment!r}")
        folder = find_data_dir(
            name,
            data_dir,
            holds_data=lambda path: all((path / file).is_file() for file in files),
            how_to_get=how_to_get,
            expected=", ".join(files),
            layouts=("", folder_name),
        )
        batches = [read_batch(folder / file, label_key) for file in train_files]
        test_images, test_labels = read_batch(folder / test_file, label_key)
        return RawDataset(
            train_images=np.concatenate([images for images, _ in batches]),
            train_labels=np.concatenate([labels for _, labels in batches]),
            classes=_read_names(folder / meta_file, names_key),
            test_images=test_images,
            test_labels=test_labels,
            mean=mean,
            std=std,
            augment=augment,
        )


_register_cifar(
    "cifar10",
    folder_name="cifar-10-batches-py",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    meta_file="batches.meta",
    label_key=b"labels",
    names_key=b"label_names",
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    archive="cifar-10-python.tar.gz",
)
_register_cifar(
    "cifar100",
    folder_name="cifar-100-python",
    train_files=("train",),
    test_file="test",
    meta_file="meta",
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    archive="cifar-100-python.tar.gz",
)
