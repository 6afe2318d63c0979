"""User data: `[data] factory = "module:factory"` returning train/val/test datasets or loaders.

The factory is called with the [data] options and may return a (train, val, test) tuple, a dict with
those keys, or an object with those attributes (e.g. prunequant.data.DatasetSplits or Loaders). Each split
is a torch Dataset (the lab makes the loaders: batch size from [baseline], train shuffled by the run
seed) or any re-iterable loader of batches the task can split: tuples, lists or dicts of tensors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from prunequant.errors import ConfigError, DataError
from prunequant.imports import import_callable

SPLITS = ("train", "val", "test")


class Splits(NamedTuple):
    """Train (shuffled), validation and test loaders."""

    train: Iterable
    val: Iterable
    test: Iterable


def load_factory(spec: str, options: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(train, val, test) of the factory `spec` called with `options`; built once per process."""
    return _load(json.dumps({"spec": spec, "options": options}, sort_keys=True))


@functools.lru_cache(maxsize=2)
def _load(key: str) -> tuple[Any, Any, Any]:
    decoded = json.loads(key)
    spec, options = decoded["spec"], decoded["options"]
    factory = import_callable(spec, "[data] factory", ConfigError)
    try:
        result = factory(**options)
    except Exception as exc:
        raise DataError(
            f"[data] factory '{spec}' failed ({type(exc).__name__}: {exc}); check it and its options"
        ) from None
    parts = _parts(result, spec)
    for name, part in zip(SPLITS, parts, strict=True):
        if not hasattr(part, "__iter__") and not hasattr(part, "__getitem__"):
            raise DataError(
                f"[data] factory '{spec}' returned a {type(part).__name__} as the {name} split; "
                "return a torch Dataset or a loader"
            )
        if isinstance(part, Iterator):
            raise DataError(
                f"[data] factory '{spec}': the {name} split is a one-shot iterator; return a Dataset or "
                "a DataLoader, which can be iterated again for every epoch and trial"
            )
    return parts


def _parts(result: Any, spec: str) -> tuple[Any, Any, Any]:
    if isinstance(result, Mapping) and all(key in result for key in SPLITS):
        return tuple(result[key] for key in SPLITS)  # type: ignore[return-value]
    if all(hasattr(result, key) for key in SPLITS):
        return tuple(getattr(result, key) for key in SPLITS)  # type: ignore[return-value]
    if isinstance(result, (tuple, list)) and len(result) == len(SPLITS):
        return tuple(result)  # type: ignore[return-value]
    raise DataError(
        f"[data] factory '{spec}' returned {type(result).__name__}; return (train, val, test), a dict "
        "with keys train/val/test, or an object with those attributes"
    )
