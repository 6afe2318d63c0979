"""BatchNorm recalibration after pruning: re-estimate running statistics on a few batches (adaptive BN).

Removing channels changes what every following BN sees, so its stored mean/variance are stale and the score
right after pruning collapses more than the weights deserve. Re-estimating the statistics (no training,
no targets) recovers much of it before any fine-tuning.
"""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn

from prunequant.tasks import Task, default_task
from prunequant.training.observe import observe_batches
from prunequant.validation import check_int_range


def tracked_batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers of `model` that keep running statistics (what recalibration re-estimates)."""
    return [
        m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


def recalibrate_bn(
    model: nn.Module, loader: Iterable, *, max_batches: int = 20, task: Task | None = None
) -> nn.Module:
    """In place: reset every BN's running stats and re-estimate them as the plain average over batches.

    Parameters
    ----------
    model:
        Its BN layers run in train mode, every other layer in eval mode, with no gradients.
    loader:
        Batches whose inputs (`task.inputs(batch)`: every input of a several-input model) are fed.
    max_batches:
        Batches read at most.
    task:
        Splits the batches; defaults to classification.

    Returns
    -------
    `model`, in eval mode.
    """
    task = task or default_task()
    check_int_range("max_batches", max_batches, 1, 10**9)
    norms = tracked_batchnorms(model)
    momenta = [bn.momentum for bn in norms]
    model.eval()
    for bn in norms:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average: every batch weighs the same
        bn.train()
    try:
        observe_batches(
            model,
            loader,
            max_batches,
            task=task,
            empty="the loader gave no batches to recalibrate BatchNorm; pass a loader with data",
        )
    finally:
        for bn, momentum in zip(norms, momenta, strict=True):
            bn.momentum = momentum
        model.eval()
    return model
