"""A classifier scoring at or below chance is broken (e.g. compressed without fine-tuning): say so."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import torch

CHANCE_FACTOR = 1.5
"""A top-1 at or below CHANCE_FACTOR / classes is reported as at chance level."""


def chance_warnings(task: Any, metrics: Mapping[str, float], outputs: Any) -> tuple[str, ...]:
    """One line when a classification model's top-1 is at or below 1.5 / classes, else nothing.

    Parameters
    ----------
    task:
        The task the metrics come from; only classification ("top1" over logits [batch, classes]) is judged.
    metrics:
        The evaluation's metrics.
    outputs:
        The model's outputs on one batch (for the number of classes).

    Returns
    -------
    The warning lines (also issued as UserWarning).
    """
    top1 = metrics.get("top1")
    if getattr(task, "name", "") != "classification" or top1 is None or math.isnan(top1):
        return ()
    if not (isinstance(outputs, torch.Tensor) and outputs.dim() == 2 and outputs.shape[1] > 1):
        return ()
    classes = int(outputs.shape[1])
    limit = CHANCE_FACTOR / classes
    if top1 > limit:
        return ()
    line = (
        f"top1 {top1:.1%} is at chance level for {classes} classes (chance {1 / classes:.1%}, warned at "
        f"<= {limit:.1%}): the model is broken; fine-tune it after compressing, or check the data"
    )
    warnings.warn(line, UserWarning, stacklevel=3)
    return (line,)
