"""The seeds' fine-tuning recipe: fine-tune at the original LR, then refine-tune at LR/10."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch

from prunequant.tasks import Task, default_task
from prunequant.training.callbacks import Callback
from prunequant.training.config import TrainConfig
from prunequant.training.evaluate import EvalResult, evaluate
from prunequant.training.trainer import Trainer


@dataclass(frozen=True)
class FinetuneResult:
    """Validation results (task metrics) after the fine-tune and the refine phase (None when skipped)."""

    finetuned: EvalResult | None
    refined: EvalResult | None
    history: list[dict[str, float]]


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

    Returns
    -------
    FinetuneResult with the task's validation metrics after each phase and the joined history.
    """
    task = task or default_task()
    refine_epochs = config.epochs if refine_epochs is None else refine_epochs
    history: list[dict[str, float]] = []
    finetuned = refined = None
    if config.epochs:
        phase = replace(config, lr_schedule="constant")
        history += Trainer(model, train_loader, val_loader, phase, callbacks, task).fit()
        finetuned = evaluate(model, val_loader, task)
    if refine_epochs:
        phase = replace(config, lr=config.lr * refine_factor, epochs=refine_epochs, lr_schedule="constant")
        history += Trainer(model, train_loader, val_loader, phase, callbacks, task).fit()
        refined = evaluate(model, val_loader, task)
    return FinetuneResult(finetuned=finetuned, refined=refined, history=history)
