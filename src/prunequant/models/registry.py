"""Model registry: zoo names -> factories, `build`, and `package.module:factory` specs."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from prunequant.errors import ModelError
from prunequant.imports import import_callable
from prunequant.validation import check_int_range

ARCH_ATTR = "prunequant_arch"
"""Attribute that `build`/`build_from_spec` set on a model: {"name": spec, "kwargs": {...}} (plain data)."""

_SHAPE_ARGS = ("num_classes", "in_channels", "input_size")
_MODELS: dict[str, Callable[..., nn.Module]] = {}
_TASKS: dict[str, str] = {}


def register_model(
    name: str, *, task: str = "classification"
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that adds a factory `f(*, num_classes, in_channels, input_size, **options)` to the zoo.

    Parameters
    ----------
    name:
        The zoo name (`build(name)`); a name another factory holds is a ModelError.
    task:
        The kind of outputs the model gives (a built-in task name, e.g. "segmentation").

    Returns
    -------
    The decorator; it returns the factory unchanged.
    """

    def decorator(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        previous = _MODELS.get(name)
        if previous is not None and _origin(previous) != _origin(factory):
            raise ModelError(
                f"model name '{name}' is already registered by {_origin(previous)}; pick another"
            )
        _MODELS[name] = factory
        _TASKS[name] = task
        return factory

    return decorator


def available_models(task: str | None = None) -> list[str]:
    """Sorted names of the registered zoo models; only those registered for `task` when it is given."""
    return sorted(name for name in _MODELS if task is None or _TASKS.get(name, "classification") == task)


def model_task(name: str) -> str:
    """The task zoo model `name` was registered for ("classification" unless it said otherwise)."""
    return _TASKS.get(name, _TASKS.get(name.lower(), "classification"))


def build(
    name: str, *, num_classes: int = 10, in_channels: int = 3, input_size: int = 32, **kwargs: Any
) -> nn.Module:
    """Build zoo model `name` for `in_channels` x `input_size`^2 inputs and `num_classes` outputs."""
    name = name if name in _MODELS else name.lower()
    factory = _MODELS.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, _MODELS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ModelError(
            f"unknown model '{name}'; {hint}choose one of {', '.join(available_models())} "
            "or give 'package.module:factory'"
        )
    check_int_range("num_classes", num_classes, 1, 1_000_000)
    check_int_range("in_channels", in_channels, 1, 1_000_000)
    check_int_range("input_size", input_size, 1, 1_000_000)
    accepted = _parameters(factory)
    unknown = sorted(set(kwargs) - accepted) if accepted is not None else []
    if unknown:
        options = ", ".join(sorted(accepted - set(_SHAPE_ARGS))) or "none"
        raise ModelError(f"model '{name}' has no option {', '.join(unknown)}; its options are: {options}")
    kwargs = {"num_classes": num_classes, "in_channels": in_channels, "input_size": input_size, **kwargs}
    return _stamp(factory(**kwargs), name, kwargs)


def build_from_spec(spec: str, **kwargs: Any) -> nn.Module:
    """Build a zoo model by name, or import `package.module:factory` and call it with the kwargs it takes."""
    if ":" not in spec:
        return build(spec, **kwargs)
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ModelError(f"model spec '{spec}' must be a zoo name or 'package.module:factory'")
    factory = import_callable(spec, "factory of model spec", ModelError)
    accepted = _parameters(factory)
    if accepted is not None:
        kwargs = {key: value for key, value in kwargs.items() if key in accepted}
    try:
        model = factory(**kwargs)
    except Exception as exc:
        raise ModelError(
            f"factory '{spec}' failed ({type(exc).__name__}: {exc}); check its arguments"
        ) from exc
    if not isinstance(model, nn.Module):
        raise ModelError(
            f"factory '{spec}' returned {type(model).__name__}, not an nn.Module; return the model"
        )
    return _stamp(model, spec, kwargs)


def _parameters(factory: Callable[..., Any]) -> set[str] | None:
    """Keyword names `factory` accepts, or None when it takes **kwargs or has no readable signature."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _origin(factory: Callable[..., Any]) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"


def _stamp(model: nn.Module, name: str, kwargs: dict[str, Any]) -> nn.Module:
    """Record how `model` was built, as plain data: survives deepcopy, leaves state_dict and fx untouched."""
    setattr(model, ARCH_ATTR, {"name": name, "kwargs": dict(kwargs)})
    return model
