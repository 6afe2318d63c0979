"""`transform_fn=` for any public function: a task whose batches are split by the user's own function."""

from __future__ import annotations

import copy
from typing import Any

from prunequant.errors import ConfigError, DataError
from prunequant.tasks.base import BatchTransform, Task
from prunequant.tasks.classification import ClassificationTask
from prunequant.tasks.io import Inputs, describe


def with_transform(task: Any | None, transform_fn: BatchTransform | None) -> Any:
    """`task` (default classification), splitting every batch with `transform_fn` when one is given.

    Parameters
    ----------
    task:
        A Task, any duck-typed task object, or None for classification. It is not modified.
    transform_fn:
        ``batch -> (inputs, target)`` for loaders of any shape (dicts, extra fields), as in NNCF's
        ``nncf.Dataset(loader, transform_fn)``; None keeps the task's own split.

    Returns
    -------
    The task itself without `transform_fn`; otherwise a copy of it that splits with `transform_fn`.
    """
    task = task if task is not None else ClassificationTask()
    if transform_fn is None:
        return task
    if not callable(transform_fn):
        raise ConfigError(f"transform_fn must be a callable batch -> (inputs, target), got {transform_fn!r}")
    checked = _checked(transform_fn)
    if isinstance(task, Task):
        split_by_fn = copy.copy(task)
        split_by_fn.transform_fn = checked
        return split_by_fn
    return _DelegatingTask(task, checked)


def _checked(transform_fn: BatchTransform) -> BatchTransform:
    def split(batch: Any) -> tuple[Inputs, Any]:
        result = transform_fn(batch)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise DataError(
                f"transform_fn must return (inputs, target); for a batch {describe(batch)} it returned "
                f"{describe(result)}"
            )
        return result

    return split


class _DelegatingTask:
    """A duck-typed user task whose batches are split by a transform_fn; everything else is the task's."""

    def __init__(self, task: Any, transform_fn: BatchTransform) -> None:
        self._task = task
        self.transform_fn = transform_fn

    def split(self, batch: Any) -> tuple[Inputs, Any]:
        return self.transform_fn(batch)

    def inputs(self, batch: Any) -> Inputs:
        return self.transform_fn(batch)[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._task, name)
