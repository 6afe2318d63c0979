"""Tasks by name, or a user's `module:factory`; the lab and the CLI resolve `--task` / `[task]` here."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from prunequant.errors import ConfigError
from prunequant.imports import import_callable
from prunequant.tasks.base import Task

_TASKS: dict[str, Callable[..., Any]] = {}

REQUIRED_METHODS = ("split", "loss", "metric_state", "comparison", "metric")


def register_task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make a task class or factory available as `name` to build_task, recipes and --task."""

    def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _TASKS:
            raise ConfigError(f"a task called '{name}' is already registered")
        _TASKS[name] = factory
        return factory

    return decorator


def available_tasks() -> list[str]:
    return sorted(_TASKS)


def build_task(spec: str | Task | Any = "classification", **options: Any) -> Task:
    """A Task from a registered name, a `module:factory` (called with `options`), or a task object.

    Parameters
    ----------
    spec:
        'classification', 'segmentation', ... (see available_tasks), 'pkg.mod:factory', or an object that
        already has the Task methods.
    options:
        Keyword options for the task's constructor, e.g. ``ignore_index=255``.

    Returns
    -------
    The task; ConfigError when it cannot be built or lacks a Task method.
    """
    if not isinstance(spec, str):
        return _checked(spec, repr(spec))
    if ":" in spec:
        factory = resolve_callable(spec, "task factory")
    elif spec in _TASKS:
        factory = _TASKS[spec]
    else:
        close = difflib.get_close_matches(spec, _TASKS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown task '{spec}'{hint} Built-in tasks: {', '.join(available_tasks())}, "
            "or give 'package.module:factory'"
        )
    try:
        task = factory(**options)
    except TypeError as exc:
        raise ConfigError(
            f"task '{spec}' does not take these options ({exc}); check the [task] options"
        ) from None
    return _checked(task, spec)


def resolve_callable(spec: str | Callable[..., Any], what: str = "callable") -> Callable[..., Any]:
    """The callable named by 'package.module:attr' (dotted attrs allowed), or `spec` itself if callable.

    Parameters
    ----------
    spec:
        A callable, or 'package.module:attr'.
    what:
        What the callable is for, used in the error message (e.g. 'task factory', 'decode function').

    Returns
    -------
    The callable; ConfigError when it cannot be imported or is not callable.
    """
    if callable(spec):
        return spec
    if ":" not in str(spec):
        raise ConfigError(f"{what} must be a callable or 'package.module:name', got {spec!r}")
    return import_callable(str(spec), what, ConfigError)


def _checked(task: Any, spec: str) -> Task:
    missing = [name for name in REQUIRED_METHODS if not callable(getattr(task, name, None))]
    for attr in ("name", "metrics", "primary"):
        if not hasattr(task, attr):
            missing.append(attr)
    if missing:
        raise ConfigError(
            f"task '{spec}' lacks {', '.join(missing)}; subclass prunequant.tasks.Task or provide them"
        )
    return task
