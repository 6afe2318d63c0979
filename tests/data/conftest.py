"""Data-test fixtures: hermetic lookup, and writers of tiny files in the real formats (IDX, CIFAR pickles)."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from prunequant.data import locate


@pytest.fixture(autouse=True)
def hermetic_lookup(monkeypatch, tmp_path):
    """No $PRUNEQUANT_DATA and an empty system folder, so only what a test writes can be found."""
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setattr(locate, "SYSTEM_ROOT", tmp_path / "system")


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    data = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def write_idx_dataset(
    folder: Path, *, n_train: int = 50, n_test: int = 20, side: int = 6, gz: bool = True, seed: int = 0
) -> Path:
    """A Fashion-MNIST-like folder of four IDX files with random side x side images and labels 0..9."""
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", rng.integers(0, 256, (count, side, side)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, count))
    return folder


def write_pickle(path: Path, content: object, protocol: int = 2) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(content, protocol=protocol))
    return path


def write_cifar10(
    folder: Path, *, per_batch: int = 4, n_test: int = 6, protocol: int = 2, seed: int = 0
) -> Path:
    """A cifar-10-batches-py folder in the original layout: dicts with bytes keys, N x 3072 uint8 data."""
    rng = np.random.default_rng(seed)
    for name, count in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batch = {
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"labels": [int(v) for v in rng.integers(0, 10, count)],
            b"batch_label": b"batch",
        }
        write_pickle(folder / name, batch, protocol)
    names = [f"class{i}".encode() for i in range(10)]
    write_pickle(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072}, protocol)
    return folder


def write_cifar100(folder: Path, *, n_train: int = 30, n_test: int = 10, seed: int = 0) -> Path:
    """A cifar-100-python folder: train/test with fine and coarse labels, meta with fine_label_names."""
    rng = np.random.default_rng(seed)
    for name, count in (("train", n_train), ("test", n_test)):
        batch = {
            b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"fine_labels": [int(v) for v in rng.integers(0, 100, count)],
            b"coarse_labels": [int(v) for v in rng.integers(0, 20, count)],
        }
        write_pickle(folder / name, batch)
    write_pickle(folder / "meta", {b"fine_label_names": [f"fine{i}".encode() for i in range(100)]})
    return folder


REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture(scope="session")
def real_fashion() -> Path:
    """The installed real Fashion-MNIST (generated scene datasets are built from it); skips if absent."""
    if not all((REAL_FASHION / f"{stem}.gz").is_file() for stem in _FASHION_FILES):
        pytest.skip(
            f"real Fashion-MNIST IDX files absent from {REAL_FASHION} (apt-get install dataset-fashion-mnist)"
        )
    return REAL_FASHION


@pytest.fixture
def fashion_data_dir(real_fashion: Path, tmp_path: Path) -> Path:
    """A fresh data directory holding a link to the real Fashion-MNIST; generated caches land beside it."""
    (tmp_path / "fashion-mnist").symlink_to(real_fashion)
    return tmp_path


@pytest.fixture
def tinydata() -> SimpleNamespace:
    """The writers above, for tests (helper modules are not importable under --import-mode=importlib)."""
    return SimpleNamespace(
        write_idx=write_idx,
        write_idx_dataset=write_idx_dataset,
        write_pickle=write_pickle,
        write_cifar10=write_cifar10,
        write_cifar100=write_cifar100,
    )
