"""The seeds' fine-tuning recipe: fine-tune at the original LR, then refine-tune at LR/10."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch

from prunequant.tasks import Task, default_task
from prunequant.training.bn_recalibration import recalibrate_bn, tracked_batchnorms
from prunequant.training.callbacks import Callback
from prunequant.training.config import TrainConfig
from prunequant.training.distill import Distillation
from prunequant.training.evaluate import EvalResult, evaluate
from prunequant.training.trainer import Trainer


@dataclass(frozen=True)
class FinetuneResult:
    """Validation results (task metrics) after the fine-tune and the refine phase (None when skipped).

    `bn_recalibrated`: BatchNorm layers re-estimated before training (None: not asked); `early_stopped`:
    per phase, the epoch early stopping ended it at (None: it ran all epochs or had no early stopping).
    """

    finetuned: EvalResult | None
    refined: EvalResult | None
    history: list[dict[str, float]]
    bn_recalibrated: int | None = None
    early_stopped: tuple[int | None, ...] = ()


def finetune_then_refine(
    model: torch.nn.Module,
    train_loader: Iterable,
    val_loader: Iterable,
    config: TrainConfig,
    *,
    refine_epochs: int | None = None,
    refine_factor: float = 0.1,
    callbacks: Sequence[Callback] = (),
    task: Task | None = None,
    distill: Distillation | None = None,
    bn_recalibrate: int = 0,
) -> FinetuneResult:
    """Fine-tune `model` in place for config.epochs at config.lr, then `refine_epochs` at lr*refine_factor.

    Parameters
    ----------
    model, train_loader, val_loader, config:
        As for Trainer; both phases use a constant LR, as the seeds do.
    refine_epochs:
        Epochs of the refine phase; defaults to config.epochs (0 skips it).
    refine_factor:
        LR multiplier of the refine phase.
    callbacks:
        Given to the Trainer of both phases (a schedule keeps counting across them).
    task:
        Splits batches, gives the loss and the validation metrics; defaults to classification.
    distill:
        Knowledge distillation from a teacher in both phases (see Distillation).
    bn_recalibrate:
        Training batches that re-estimate BatchNorm statistics before the first phase (0: none).
    config.early_stopping_patience:
        Applies to each phase: it stops on the primary metric and restores that phase's best weights.

    Returns
    -------
    FinetuneResult with the task's validation metrics after each phase and the joined history.
    """
    task = task or default_task()
    refine_epochs = config.epochs if refine_epochs is None else refine_epochs
    history: list[dict[str, float]] = []
    bn_count = None
    stopped: list[int | None] = []
    if bn_recalibrate:
        bn_count = len(tracked_batchnorms(model))
        recalibrate_bn(model, train_loader, max_batches=bn_recalibrate, task=task)
    phases = [(config.epochs, config.lr), (refine_epochs, config.lr * refine_factor)]
    results: list[EvalResult | None] = [None, None]
    for index, (epochs, lr) in enumerate(phases):
        if not epochs:
            continue
        phase = replace(config, lr=lr, epochs=epochs, lr_schedule="constant")
        trainer = Trainer(model, train_loader, val_loader, phase, callbacks, task, distill=distill)
        history += trainer.fit()
        stopped.append(trainer.early_stopping.stopped_epoch if trainer.early_stopping else None)
        results[index] = evaluate(model, val_loader, task)
    finetuned, refined = results
    return FinetuneResult(
        finetuned=finetuned,
        refined=refined,
        history=history,
        bn_recalibrated=bn_count,
        early_stopped=tuple(stopped),
    )
