"""prune_and_finetune: a schedule plus the seeds' recipe (fine-tune at LR, then refine-tune at LR/10)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import nn

from prunequant.errors import ConfigError
from prunequant.pruning.unstructured.config import UnstructuredConfig
from prunequant.pruning.unstructured.magnitude import PruneResult, apply_pruning
from prunequant.pruning.unstructured.schedules import make_schedule
from prunequant.tasks import Task
from prunequant.training import FinetuneResult, TrainConfig, finetune_then_refine


@dataclass(frozen=True)
class PruneFinetuneResult:
    """The final pruning result, the fine-tune results (None when post-training) and the schedule's log."""

    prune: PruneResult
    finetune: FinetuneResult | None
    schedule: str
    events: list[tuple[int, float]]


def prune_and_finetune(
    model: nn.Module,
    config: UnstructuredConfig,
    train_loader: Iterable | None = None,
    val_loader: Iterable | None = None,
    train_config: TrainConfig | None = None,
    *,
    schedule: str = "oneshot",
    steps: int = 3,
    refine_epochs: int = 0,
    refine_factor: float = 0.1,
    task: Task | None = None,
) -> PruneFinetuneResult:
    """Prune `model` IN PLACE following `schedule` (oneshot, iterative or agp; see make_schedule).

    With no training (no train_config epochs and no refine_epochs) this is post-training one-shot pruning.
    Otherwise fine-tune for train_config.epochs at train_config.lr, then refine for `refine_epochs` at
    lr * refine_factor, the masks held by the schedule's MaskCallback throughout; `task` (default
    classification) splits the batches and gives the loss and the validation metrics.
    """
    epochs = train_config.epochs if train_config is not None else 0
    if epochs + refine_epochs == 0:
        if schedule != "oneshot":
            raise ConfigError(f"the {schedule} schedule prunes during fine-tuning; give fine-tune epochs")
        return PruneFinetuneResult(apply_pruning(model, config), None, schedule, [(0, config.amount)])
    if train_config is None or train_loader is None or val_loader is None:
        raise ConfigError(
            "pruning-aware fine-tuning needs a train config and train/val data (e.g. --dataset)"
        )
    batches = len(train_loader)  # type: ignore[arg-type]
    if train_config.max_batches_per_epoch:
        batches = min(batches, train_config.max_batches_per_epoch)
    callback = make_schedule(
        schedule, config, steps=steps, epochs=epochs or refine_epochs, batches_per_epoch=batches
    )
    finetuned = finetune_then_refine(
        model,
        train_loader,
        val_loader,
        train_config,
        refine_epochs=refine_epochs,
        refine_factor=refine_factor,
        callbacks=[callback],
        task=task,
    )
    if callback.result is None:  # no batch was run (an empty loader)
        callback.result = apply_pruning(model, config)
    return PruneFinetuneResult(callback.result, finetuned, schedule, list(callback.events))
