"""Dataset registry: a loader is one function registered by name; load_dataset resolves and splits it."""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prunequant.data.splits import DatasetSplits, RawDataset, build_splits
from prunequant.errors import ConfigError
from prunequant.validation import check_fraction, check_int_range

Loader = Callable[..., RawDataset]
_LOADERS: dict[str, Loader] = {}
_BUILT_IN: set[str] = set()
"""Datasets that read no files (generated in memory or bundled with a package): a data_dir is refused."""
LIMIT_ENV = "PRUNEQUANT_LIMIT"
"""Environment variable: cap every dataset at this many samples (a smoke run of any command or recipe)."""


def _canonical(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def register_dataset(name: str, *, reads_files: bool = True) -> Callable[[Loader], Loader]:
    """Register `fn(data_dir: Path | None, seed: int, **options) -> RawDataset` under `name`.

    A loader may instead return an object with `split(name, *, val_fraction, seed, limit) -> DatasetSplits`
    (e.g. `GeneratedData`), for datasets that are not images with class labels.

    The loader's keyword parameters after `seed` are the dataset's options; `load_dataset` rejects others.

    Parameters
    ----------
    name:
        The dataset name (case and '_'/'-' insensitive); a name already taken is a ConfigError.
    reads_files:
        False for a dataset built in memory or bundled with a package: it never reads (or caches under)
        a data_dir, so `load_dataset` refuses one instead of ignoring it.

    Returns
    -------
    The decorator; it returns the loader unchanged.
    """
    key = _canonical(name)

    def decorator(fn: Loader) -> Loader:
        if key in _LOADERS:
            raise ConfigError(f"dataset {key!r} is already registered; pick another name")
        _LOADERS[key] = fn
        if not reads_files:
            _BUILT_IN.add(key)
        return fn

    return decorator


def available_datasets() -> list[str]:
    """Names accepted by `load_dataset`, sorted."""
    return sorted(_LOADERS)


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    **options: Any,
) -> DatasetSplits:
    """Load dataset `name` as normalised in-memory train/val/test splits.

    Validation is carved from train by `seed`; `limit` caps the training pool (train + val) and the test
    split in proportion. `options` are the dataset's own (e.g. synthetic's `size`). Never downloads. A
    `data_dir` given with a built-in dataset (one that reads no files, e.g. synthetic) is a ConfigError.
    """
    key = _canonical(name)
    if key not in _LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(available_datasets())}")
    if data_dir and key in _BUILT_IN:
        raise ConfigError(
            f"dataset {key!r} is built in and reads no files, so data_dir {data_dir} would not be used; "
            "drop data_dir (CLI: --data-dir)"
        )
    val_fraction = check_fraction("val_fraction", val_fraction)
    check_int_range("seed", seed, 0, 2**63 - 1)
    if limit is not None:
        check_int_range("limit", limit, 1, 2**63 - 1)
    limit = smoke_limit(limit)
    loader = _LOADERS[key]
    _check_options(key, loader, options)
    raw = loader(Path(data_dir).expanduser() if data_dir else None, seed, **options)  # "" means unset
    if not isinstance(raw, RawDataset):  # a generated dataset (data/generated.py) splits itself
        return raw.split(key, val_fraction=val_fraction, seed=seed, limit=limit)
    return build_splits(key, raw, val_fraction=val_fraction, seed=seed, limit=limit)


def smoke_limit(limit: int | None) -> int | None:
    """`limit`, lowered to $PRUNEQUANT_LIMIT when that is set (with a warning: figures are then smoke-scale).

    Parameters
    ----------
    limit: the caller's own cap, or None.

    Returns
    -------
    The smaller of the two caps, or `limit` when the variable is unset.
    """
    text = os.environ.get(LIMIT_ENV, "").strip()
    if not text:
        return limit
    try:
        cap = int(text)
    except ValueError:
        raise ConfigError(f"{LIMIT_ENV}={text!r} is not a whole number; unset it or give e.g. 256") from None
    check_int_range(LIMIT_ENV, cap, 1, 2**63 - 1)
    warnings.warn(
        f"{LIMIT_ENV}={cap}: datasets are capped at {cap} samples (a smoke run; its figures mean nothing)",
        stacklevel=3,
    )
    return cap if limit is None else min(limit, cap)


def _check_options(name: str, loader: Loader, options: dict[str, Any]) -> None:
    params = list(inspect.signature(loader).parameters.values())[2:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    allowed = [p.name for p in params]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"dataset {name!r} has no option {unknown[0]!r}; its options are: {', '.join(allowed) or 'none'}"
        )
