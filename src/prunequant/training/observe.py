"""Feed a model the first batches of a loader without gradients, for what its hooks or layers observe
(BatchNorm statistics, activation ranges): the loop shared by BN recalibration and quantization
calibration."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from prunequant.errors import DataError
from prunequant.tasks import Task, run_model


def observe_batches(model: nn.Module, loader: Iterable, max_batches: int, *, task: Task, empty: str) -> int:
    """Run `model` with no gradients on the inputs (`task.inputs(batch)`) of `loader`'s first batches.

    Parameters
    ----------
    model:
        Run as it is: the caller sets its modes and what observes.
    loader:
        Batches; reading stops after `max_batches`.
    max_batches:
        Batches fed at most (validated by the caller, under its own option name).
    task:
        Splits a batch into the model's inputs (every input of a several-input model).
    empty:
        The DataError line when the loader gives no batch.

    Returns
    -------
    How many batches were fed (at least 1).
    """
    seen = 0
    with torch.no_grad():
        for batch in loader:
            if seen >= max_batches:
                break
            run_model(model, task.inputs(batch))
            seen += 1
    if seen == 0:
        raise DataError(empty)
    return seen
