"""Picking the output tensor a dense task scores from a model's outputs (a tensor, tuple, list or dict)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from prunequant.errors import ConfigError, ModelError
from prunequant.tasks.base import Task, mismatch
from prunequant.tasks.io import Outputs


def check_output_index(index: int | str) -> int | str:
    """Check an `output_index` option: an int position or a dict key."""
    if isinstance(index, bool) or not isinstance(index, (int, str)):
        raise ConfigError(f"output_index must be an integer position or a dict key, got {index!r}")
    return index


def select_output(task: Task, outputs: Outputs, target: Any, index: int | str, expected: str) -> torch.Tensor:
    """The tensor at `index` of `outputs` (the outputs themselves when they are one tensor).

    Parameters
    ----------
    task:
        The task, for the error message.
    outputs:
        What the model returned.
    target:
        The batch target, for the error message.
    index:
        Position in a tuple/list, or key of a dict.
    expected:
        What the task expects, e.g. ``"logits [batch, classes, H, W]"``, for the error message.

    Returns
    -------
    The selected tensor; ModelError (one line naming outputs and target) when there is none.
    """
    if isinstance(outputs, torch.Tensor):
        return outputs
    chosen: Any = None
    if isinstance(outputs, Mapping) and isinstance(index, str):
        chosen = outputs.get(index)
    elif isinstance(outputs, (Mapping, tuple, list)) and isinstance(index, int):
        values = list(outputs.values()) if isinstance(outputs, Mapping) else list(outputs)
        chosen = values[index] if -len(values) <= index < len(values) else None
    if not isinstance(chosen, torch.Tensor):
        raise ModelError(mismatch(task, outputs, target, f"{expected} (output_index={index!r})"))
    return chosen
