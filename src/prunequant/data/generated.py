"""Generated datasets: arrays built once from a seed, cached under the data directory, split by seed.

A cache file is an .npz written atomically; it holds the build parameters and a SHA-256 of its arrays and
is checked on every load. A file that fails the check is rebuilt, with a warning that names it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from prunequant.atomic import atomic_write
from prunequant.data.locate import ENV_VAR
from prunequant.data.splits import DatasetSplits, carve

Arrays = dict[str, np.ndarray]
_META = "__params__"
_DIGEST = "__sha256__"


def cache_root(data_dir: str | os.PathLike | None) -> Path:
    """Where generated datasets are cached: data_dir, else $PRUNEQUANT_DATA, else ~/.cache/prunequant."""
    for root in (data_dir, os.environ.get(ENV_VAR)):
        if root:
            return Path(root).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prunequant"


def cache_path(name: str, params: Mapping[str, Any], data_dir: str | os.PathLike | None) -> Path:
    """The cache file of dataset `name` built with `params` (a JSON-able mapping)."""
    key = hashlib.sha256(json.dumps(dict(params), sort_keys=True).encode()).hexdigest()[:16]
    return cache_root(data_dir) / name / f"{name}-{key}.npz"


def digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the arrays' names, dtypes, shapes and bytes, in name order."""
    sha = hashlib.sha256()
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        sha.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        sha.update(array.tobytes())
    return sha.hexdigest()


def cached(
    name: str, params: Mapping[str, Any], build: Callable[[], Arrays], data_dir: str | os.PathLike | None
) -> Arrays:
    """The arrays of `build()`, read from the cache when a valid file exists, else built and cached.

    Parameters
    ----------
    name, params:
        Dataset name and everything the arrays depend on (seed, sizes, source fingerprint, version).
    build:
        Makes the arrays; called only on a cache miss or a corrupt file.
    data_dir:
        Cache root (see `cache_root`). If it cannot be written, a warning says so and the arrays are kept
        in memory only.

    Returns
    -------
    dict of numpy arrays, identical whether built or read.
    """
    path = cache_path(name, params, data_dir)
    meta = json.dumps(dict(params), sort_keys=True)
    if path.exists():
        arrays, problem = _read(path, meta)
        if arrays is not None:
            return arrays
        warnings.warn(f"{name}: cache file {path} is unusable ({problem}); rebuilding it", stacklevel=3)
    arrays = build()
    payload = io.BytesIO()
    np.savez_compressed(payload, **arrays, **{_META: np.array(meta), _DIGEST: np.array(digest(arrays))})
    try:
        atomic_write(path, payload.getvalue())
    except OSError as exc:
        warnings.warn(
            f"{name}: cannot write cache file {path} ({exc}); keeping the data in memory", stacklevel=3
        )
    return arrays


def _read(path: Path, meta: str) -> tuple[Arrays | None, str]:
    """(arrays, "") from a valid cache file, else (None, what is wrong with it)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if _META not in stored or _DIGEST not in stored:
        return None, "no parameters or checksum in it"
    if str(stored.pop(_META)) != meta:
        return None, "built with other parameters"
    expected = str(stored.pop(_DIGEST))
    if digest(stored) != expected:
        return None, "checksum mismatch"
    return stored, ""


@dataclass(frozen=True)
class GeneratedData:
    """What a generated dataset's loader returns; `load_dataset` calls `split` on it.

    `train`/`test` are whole splits as arrays sharing their first axis; `make` wraps a subset of them as
    a torch Dataset; the other fields fill `DatasetSplits`.
    """

    train: Arrays
    test: Arrays
    make: Callable[[Arrays], Dataset]
    num_classes: int
    input_shape: tuple[int, int, int]
    classes: tuple[str, ...]

    def split(self, name: str, *, val_fraction: float, seed: int, limit: int | None) -> DatasetSplits:
        """Carve validation from train by `seed`; `limit` caps train + val and the test split in proportion.

        Parameters
        ----------
        name: dataset name for messages. val_fraction, seed, limit: as in `load_dataset`.

        Returns
        -------
        DatasetSplits of `make`'s datasets.
        """
        rng = np.random.default_rng(seed)
        pool = rng.permutation(_length(self.train))
        test_idx = np.arange(_length(self.test))
        train_idx, val_idx, test_idx = carve(
            name, rng, pool, test_idx, val_fraction=val_fraction, limit=limit
        )
        return DatasetSplits(
            name=name,
            train=self.make(_take(self.train, train_idx)),
            val=self.make(_take(self.train, val_idx)),
            test=self.make(_take(self.test, test_idx)),
            num_classes=self.num_classes,
            input_shape=self.input_shape,
            classes=self.classes,
        )


def _length(arrays: Arrays) -> int:
    return len(next(iter(arrays.values())))


def _take(arrays: Arrays, idx: np.ndarray) -> Arrays:
    idx = np.sort(idx)
    return {key: value[idx] for key, value in arrays.items()}
