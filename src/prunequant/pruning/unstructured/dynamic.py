"""Dynamic threshold (seed 000): raise sparsity while the fine-tuned validation score stays within budget."""

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
from prunequant.tasks import MetricSpec, Task, default_task
from prunequant.training import TrainConfig, Trainer, evaluate
from prunequant.validation import check_fraction, check_positive


@dataclass(frozen=True)
class DynamicConfig:
    """`budget`: how much worse than the baseline the validation score may get, on the task's primary
    metric in its own direction: in the metric's units (a fraction for "%" metrics: 0.01 = 1 point), or,
    with `relative`, as a share of |baseline| (0.03 = 3 % worse).
    `step`: first sparsity increment; halved on each rejection until below `min_step`. `max_sparsity` caps it.
    """

    budget: float = 0.01
    step: float = 0.05
    min_step: float = 0.0125
    max_sparsity: float = 0.95
    relative: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.budget, (int, float)) or not math.isfinite(self.budget) or self.budget < 0:
            raise ConfigError(f"budget must be a finite number >= 0, got {self.budget!r}")
        check_fraction("step", check_positive("step", self.step))
        check_fraction("min_step", check_positive("min_step", self.min_step))
        check_fraction("max_sparsity", check_positive("max_sparsity", self.max_sparsity))
        if self.min_step > self.step:
            raise ConfigError(f"min_step ({self.min_step}) must not exceed step ({self.step})")

    def drop(self, metric: MetricSpec, baseline: float, value: float) -> float:
        """How much worse `value` is than `baseline`, in the unit the budget is given in."""
        if self.relative:
            return metric.relative_drop(baseline, value)
        return metric.drop(baseline, value)

    def within(self, metric: MetricSpec, baseline: float, value: float) -> bool:
        """True when `value` is no worse than `baseline` by more than the budget (NaN never is)."""
        return self.drop(metric, baseline, value) <= self.budget + 1e-12  # float noise must not reject fits


@dataclass(frozen=True)
class DynamicStep:
    """One attempt: the sparsity tried, the validation score after its fine-tune, and whether it was kept."""

    sparsity: float
    val_score: float
    accepted: bool


@dataclass(frozen=True)
class DynamicResult:
    """Baseline and final validation score (the task's primary `metric`), the final sparsity, every attempt,
    and the last kept pruning."""

    baseline_score: float
    score: float
    sparsity: float
    history: list[DynamicStep]
    prune: PruneResult | None
    metric: str = ""
    higher_is_better: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "baseline_score": self.baseline_score,
            "score": self.score,
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
    relative: bool = False,
    task: Task | None = None,
) -> DynamicResult:
    """Prune `model` IN PLACE as far as the score budget allows (seed 000's dynamic threshold).

    From the current state, try sparsity + step: prune (masks only grow), fine-tune briefly with the masks
    held, score on val. Within `budget` of the baseline: accept. Otherwise restore the last accepted
    weights and masks and halve the step (a sparsity at or above one that failed is not tried again); stop
    when the step falls below `min_step` or at `max_sparsity`.

    Parameters
    ----------
    model:
        Pruned in place; ends in the last accepted state.
    loaders:
        Has `.train` and `.val`, yielding batches the task can split.
    budget, relative:
        Allowed worsening of the task's primary metric on val, in its direction: absolute in the metric's
        units (a fraction for "%" metrics), or with `relative` a share of |baseline|; see DynamicConfig.
    step, min_step, max_sparsity:
        The sparsity walk; see DynamicConfig.
    finetune:
        Fine-tune after each step (default one constant-LR epoch at 0.01; epochs=0: post-training).
    prune:
        Scope and exclusions (its amount is unused).
    task:
        Loss and metrics; defaults to classification.

    Returns
    -------
    DynamicResult, scores in the primary metric named by its `metric`.
    """
    task = task or default_task()
    metric = task.primary_metric
    settings = DynamicConfig(budget, step, min_step, max_sparsity, relative)
    if metric.unit == "%" and not relative:
        check_fraction("budget", budget)
    finetune = finetune if finetune is not None else TrainConfig(epochs=1, lr=0.01, lr_schedule="constant")
    prune = prune if prune is not None else UnstructuredConfig(0.0)
    baseline = evaluate(model, loaders.val, task).score
    good, good_score, current, step = _snapshot(model), baseline, 0.0, settings.step
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
            Trainer(model, loaders.train, loaders.val, finetune, [MaskCallback()], task).fit()
        score = evaluate(model, loaders.val, task).score
        accepted = settings.within(metric, baseline, score)
        history.append(DynamicStep(target, score, accepted))
        if accepted:
            good, good_score, current, last = _snapshot(model), score, target, result
        else:
            _restore(model, good)
            lowest_rejected, step = target, step / 2
    return DynamicResult(baseline, good_score, current, history, last, metric.name, metric.higher_is_better)


Snapshot = tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]


def _snapshot(model: nn.Module) -> Snapshot:
    """Copies of the weights and of the masks (which state_dict does not hold)."""
    return copy.deepcopy(model.state_dict()), {name: mask.clone() for name, mask in get_masks(model).items()}


def _restore(model: nn.Module, snapshot: Snapshot) -> None:
    state, masks = snapshot
    remove_masks(model)  # before loading: it bakes the rejected masks in
    model.load_state_dict(state)
    for name, mask in masks.items():
        module_name, _, param = name.rpartition(".")
        set_mask(model.get_submodule(module_name), param, mask)
