"""Calling the layers below with the recipe's task.

Every function that trains, scores, calibrates or compares takes `task=` (the Task seam). While a function
does not take it yet, the default task (classification) still runs through it unchanged, and any other
task is refused with one line naming the function, never run with the wrong loss or inputs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from prunequant.errors import ConfigError
from prunequant.tasks import Task, default_task


@functools.cache
def takes_task(fn: Callable[..., Any]) -> bool:
    """True when `fn` has a `task` parameter (or **kwargs)."""
    params = inspect.signature(fn).parameters.values()
    return any(p.name == "task" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def is_default(task: Task) -> bool:
    """True for the default task with default options (what a function without `task=` assumes)."""
    reference = default_task()
    return type(task) is type(reference) and vars(task) == vars(reference)


def with_task(fn: Callable[..., Any], *args: Any, task: Task, **kwargs: Any) -> Any:
    """`fn(*args, task=task, **kwargs)`; for a function without `task`, the default task only."""
    if takes_task(fn):
        return fn(*args, task=task, **kwargs)
    if not is_default(task):
        raise ConfigError(
            f"{fn.__module__}.{fn.__qualname__} does not take a task yet, so it cannot serve task "
            f"'{task.name}'; this prunequant supports that step for the default task only"
        )
    return fn(*args, **kwargs)
