"""Dynamic threshold (seed 000): raise sparsity while fine-tuned validation accuracy stays within budget."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured.callbacks import MaskCallback
from prunequant.pruning.unstructured.config import UnstructuredConfig
from prunequant.pruning.unstructured.magnitude import PruneResult, apply_pruning
from prunequant.pruning.unstructured.masks import get_masks, remove_masks, set_mask
from prunequant.training import TrainConfig, Trainer, evaluate
from prunequant.validation import check_fraction, check_positive


@dataclass(frozen=True)
class DynamicConfig:
    """`budget`: allowed drop of validation top-1 (a fraction: 0.01 = 1 point) below the baseline.
    `step`: first sparsity increment; halved on each rejection until below `min_step`. `max_sparsity` caps it.
    """

    budget: float = 0.01
    step: float = 0.05
    min_step: float = 0.0125
    max_sparsity: float = 0.95

    def __post_init__(self) -> None:
        check_fraction("budget", self.budget)
        check_fraction("step", check_positive("step", self.step))
        check_fraction("min_step", check_positive("min_step", self.min_step))
        check_fraction("max_sparsity", check_positive("max_sparsity", self.max_sparsity))
        if self.min_step > self.step:
            raise ConfigError(f"min_step ({self.min_step}) must not exceed step ({self.step})")


@dataclass(frozen=True)
class DynamicStep:
    """One attempt: the sparsity tried, validation top-1 after its fine-tune, and whether it was kept."""

    sparsity: float
    val_top1: float
    accepted: bool


@dataclass(frozen=True)
class DynamicResult:
    """Baseline and final validation top-1, the final sparsity, every attempt, and the last kept pruning."""

    baseline_top1: float
    top1: float
    sparsity: float
    history: list[DynamicStep]
    prune: PruneResult | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "baseline_top1": self.baseline_top1,
            "top1": self.top1,
            "sparsity": self.sparsity,
            "history": [asdict(step) for step in self.history],
            "prune": self.prune.to_dict() if self.prune is not None else None,
        }


def dynamic_prune(
    model: nn.Module,
    loaders: Any,
    *,
    budget: float = 0.01,
    step: float = 0.05,
    min_step: float = 0.0125,
    max_sparsity: float = 0.95,
    finetune: TrainConfig | None = None,
    prune: UnstructuredConfig | None = None,
) -> DynamicResult:
    """Prune `model` IN PLACE as far as the accuracy budget allows (seed 000's dynamic threshold).

    `loaders` has `.train` and `.val`. From the current state, try sparsity + step: prune (masks only
    grow), fine-tune briefly with the masks held (`finetune`, default one constant-LR epoch at 0.01;
    a config with epochs=0 makes it post-training), score on val. Within `budget` of the baseline: accept.
    Otherwise restore the last accepted weights and masks and halve the step (a sparsity at or above one
    that failed is not tried again); stop when the step falls below `min_step` or at `max_sparsity`.
    `prune` sets scope and exclusions (its amount is unused). The budget is absolute top-1 on val.
    """
    settings = DynamicConfig(budget, step, min_step, max_sparsity)
    finetune = finetune if finetune is not None else TrainConfig(epochs=1, lr=0.01, lr_schedule="constant")
    prune = prune if prune is not None else UnstructuredConfig(0.0)
    baseline = evaluate(model, loaders.val).top1
    good, good_top1, current, step = _snapshot(model), baseline, 0.0, settings.step
    history: list[DynamicStep] = []
    last: PruneResult | None = None
    lowest_rejected = math.inf
    while step >= settings.min_step and current < settings.max_sparsity:
        target = round(min(current + step, settings.max_sparsity), 10)
        if target >= lowest_rejected:  # failed at this sparsity or below: only a smaller step can pass
            step /= 2
            continue
        result = apply_pruning(model, prune.with_amount(target))
        if finetune.epochs:
            Trainer(model, loaders.train, loaders.val, finetune, [MaskCallback()]).fit()
        top1 = evaluate(model, loaders.val).top1
        accepted = baseline - top1 <= settings.budget + 1e-12  # float noise must not reject exact fits
        history.append(DynamicStep(target, top1, accepted))
        if accepted:
            good, good_top1, current, last = _snapshot(model), top1, target, result
        else:
            _restore(model, good)
            lowest_rejected, step = target, step / 2
    return DynamicResult(baseline, good_top1, current, history, last)


Snapshot = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]


def _snapshot(model: nn.Module) -> Snapshot:
    """Copies of the weights and of the masks (which state_dict does not hold)."""
    return copy.deepcopy(model.state_dict()), {name: mask.clone() for name, mask in get_masks(model).items()}


def _restore(model: nn.Module, snapshot: Snapshot) -> None:
    state, masks = snapshot
    model.load_state_dict(state)
    remove_masks(model)
    for name, mask in masks.items():
        module_name, _, param = name.rpartition(".")
        set_mask(model.get_submodule(module_name), param, mask)
