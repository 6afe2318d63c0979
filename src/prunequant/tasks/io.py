"""Model inputs and outputs of any structure: a tensor, a tuple/list or a dict of tensors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from prunequant.errors import DataError

Inputs = torch.Tensor | tuple[torch.Tensor, ...] | dict[str, torch.Tensor]
Outputs = torch.Tensor | tuple[Any, ...] | list[Any] | dict[str, Any]


def run_model(model: Any, inputs: Inputs) -> Outputs:
    """Call `model` with `inputs`: a tuple is spread as positional args, a dict as keyword args.

    Inputs the model's signature cannot take (a dict batch with extra fields, a tuple with ids) raise
    DataError, one line naming the inputs, the signature and the fix (transform_fn or target_key).
    """
    args, kwargs = _arguments(inputs)
    try:
        return model(*args, **kwargs)
    except TypeError as err:
        signature = _signature(model)
        if signature is None or _binds(signature, args, kwargs):
            raise
        raise DataError(
            f"{_name(model)}({', '.join(signature.parameters)}) cannot take the inputs split from the "
            f"batch: {describe(inputs)}; "
            "pass transform_fn=lambda batch: (inputs, target) (or target_key= for dict batches) to the "
            "function or the task"
        ) from err


def _arguments(inputs: Inputs) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs), {}
    return (inputs,), {}


def _signature(model: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(model.forward if isinstance(model, torch.nn.Module) else model)
    except (TypeError, ValueError):
        return None


def _binds(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _name(model: Any) -> str:
    name = type(model).__name__
    return f"{name}.forward" if isinstance(model, torch.nn.Module) else name


def as_args(inputs: Inputs) -> tuple[torch.Tensor, ...]:
    """Inputs as a positional tuple (a dict keeps its insertion order), e.g. for tracing or ONNX export."""
    if isinstance(inputs, Mapping):
        return tuple(inputs.values())
    if isinstance(inputs, (tuple, list)):
        return tuple(inputs)
    return (inputs,)


def input_names(inputs: Inputs) -> list[str]:
    """Names for each input: a dict's keys, else 'input' (one) or 'input0', 'input1', ..."""
    if isinstance(inputs, Mapping):
        return [str(key) for key in inputs]
    count = len(inputs) if isinstance(inputs, (tuple, list)) else 1
    return ["input"] if count == 1 else [f"input{i}" for i in range(count)]


def flatten_outputs(outputs: Outputs) -> list[torch.Tensor]:
    """Every tensor of a (nested) output structure, in a stable order (dicts by insertion order)."""
    if isinstance(outputs, torch.Tensor):
        return [outputs]
    if isinstance(outputs, Mapping):
        return [t for value in outputs.values() for t in flatten_outputs(value)]
    if isinstance(outputs, Sequence) and not isinstance(outputs, (str, bytes)):
        return [t for value in outputs for t in flatten_outputs(value)]
    if outputs is None:
        return []
    return [torch.as_tensor(outputs)]


def output_names(outputs: Outputs, prefix: str = "output") -> list[str]:
    """Names matching flatten_outputs: dict keys joined with '.', sequence indices, or 'output'."""
    if isinstance(outputs, torch.Tensor):
        return [prefix]
    if isinstance(outputs, Mapping):
        return [n for key, value in outputs.items() for n in output_names(value, f"{prefix}.{key}")]
    if isinstance(outputs, Sequence) and not isinstance(outputs, (str, bytes)):
        return [n for i, value in enumerate(outputs) for n in output_names(value, f"{prefix}{i}")]
    return [prefix]


def batch_size_of(inputs: Inputs) -> int:
    """Leading dimension of the first input tensor (1 for a 0-d tensor)."""
    first = as_args(inputs)[0]
    return int(first.shape[0]) if first.dim() else 1


def to_device(value: Any, device: torch.device | str) -> Any:
    """Move every tensor of a nested tuple/list/dict structure to `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, Mapping):
        return {key: to_device(item, device) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return type(value)(to_device(item, device) for item in value)
    return value


def describe(value: Any) -> str:
    """Short structure for error messages, e.g. 'tuple(Tensor[8, 3, 32, 32], Tensor[8, 1, 32, 32])'."""
    if isinstance(value, torch.Tensor):
        return f"Tensor[{', '.join(map(str, value.shape))}]"
    if isinstance(value, Mapping):
        return "dict(" + ", ".join(f"{k}={describe(v)}" for k, v in value.items()) + ")"
    if isinstance(value, (tuple, list)):
        if len(value) > 4 and not any(isinstance(v, torch.Tensor) for v in value):
            return f"{type(value).__name__}[{len(value)}]"
        return f"{type(value).__name__}(" + ", ".join(describe(v) for v in value) + ")"
    return type(value).__name__


def take(inputs: Inputs, count: int) -> Inputs:
    """The first `count` samples of every input tensor, keeping the structure (tensor, tuple or dict)."""
    if isinstance(inputs, Mapping):
        return {key: take(value, count) for key, value in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(take(value, count) for value in inputs)
    return inputs[:count] if isinstance(inputs, torch.Tensor) and inputs.dim() else inputs
