"""Per-channel activation statistics at layer inputs, from calibration batches (seeds 003 Alg. 1, 004 APoZ).

For each watched conv/linear, the input's channel positions get: the moving average of mean |x| (seed 003
Alg. 1: mu <- (mu * t + m(h)) / (t + 1)), the fraction of zeros (APoZ, seed 004 formula 2) and, with
`taylor=True`, the first-order Taylor score |sum over positions of x * dL/dx| averaged over samples, L being
the task's loss. Batches are split by the task, so models with several inputs are fed all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from prunequant.errors import ConfigError, DataError
from prunequant.tasks import Task, default_task, run_model


@dataclass
class ActivationStats:
    """Per-position statistics of each watched layer's input, keyed by layer name."""

    l1: dict[str, torch.Tensor] = field(default_factory=dict)
    zeros: dict[str, torch.Tensor] = field(default_factory=dict)
    taylor: dict[str, torch.Tensor] = field(default_factory=dict)
    batches: int = 0


def _channel_dim(module: nn.Module, x: torch.Tensor) -> int:
    return x.dim() - 1 if isinstance(module, nn.Linear) else 1


def _per_position(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean over every dimension but `dim` -> one value per position."""
    return x.transpose(0, dim).reshape(x.shape[dim], -1).mean(dim=1)


class _Running:
    """Cumulative moving average per key: mu_{t+1} = (mu_t * t + value) / (t + 1)."""

    def __init__(self) -> None:
        self.mean: dict[str, torch.Tensor] = {}
        self.count: dict[str, int] = {}

    def update(self, key: str, value: torch.Tensor) -> None:
        t = self.count.get(key, 0)
        previous = self.mean.get(key, torch.zeros_like(value))
        self.mean[key] = (previous * t + value) / (t + 1)
        self.count[key] = t + 1


def collect_activation_stats(
    model: nn.Module,
    module_names: Iterable[str],
    loader: Iterable,
    *,
    max_batches: int = 8,
    taylor: bool = False,
    task: Task | None = None,
) -> ActivationStats:
    """Run up to `max_batches` batches of `loader` through `model` (in eval mode) and gather stats.

    Parameters
    ----------
    model, module_names:
        The model and the conv/linear layers whose inputs are watched.
    loader:
        Batches the task can split (a bare tensor batch is all inputs, no target).
    max_batches:
        Batches read at most.
    taylor:
        Also gather Taylor scores: back-propagates the task's loss, so batches need a target; parameter
        gradients are cleared afterwards.
    task:
        Splits batches and gives the loss; defaults to classification.

    Returns
    -------
    ActivationStats keyed by layer name.
    """
    task = task or default_task()
    modules = dict(model.named_modules())
    l1, zeros, grads = _Running(), _Running(), _Running()
    handles = []

    def watch(name: str, module: nn.Module):
        def hook(_: nn.Module, args: tuple) -> None:
            x = args[0]
            dim = _channel_dim(module, x)
            l1.update(name, _per_position(x.detach().abs(), dim))
            zeros.update(name, _per_position((x.detach() == 0).float(), dim))
            if taylor and x.requires_grad:
                x.register_hook(lambda grad: grads.update(name, _taylor(x.detach(), grad, dim)))

        return hook

    for name in dict.fromkeys(module_names):
        handles.append(modules[name].register_forward_pre_hook(watch(name, modules[name])))
    was_training = model.training
    model.eval()
    batches = 0
    try:
        for batch in loader:
            if batches >= max_batches:
                break
            inputs, target = task.split(batch)
            if taylor:
                if target is None:
                    raise ConfigError(
                        f"importance 'taylor' back-propagates the loss of task '{task.name}', but the "
                        "calibration batches carry no target; pass a loader of (inputs..., target) batches"
                    )
                with torch.enable_grad():
                    task.loss(run_model(model, inputs), target).backward()
            else:
                with torch.no_grad():
                    run_model(model, inputs)
            batches += 1
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
        if taylor:
            model.zero_grad(set_to_none=True)
    if batches == 0:
        raise DataError("the calibration loader gave no batches; pass a loader with data")
    return ActivationStats(l1.mean, zeros.mean, grads.mean, batches)


def _taylor(x: torch.Tensor, grad: torch.Tensor, dim: int) -> torch.Tensor:
    """|sum over non-channel, non-batch dims of x * grad|, averaged over the samples (Molchanov et al.)."""
    product = (x * grad).movedim(dim, -1)
    per_sample = product.reshape(product.shape[0], -1, product.shape[-1]).sum(dim=1).abs()
    return per_sample.mean(dim=0)
