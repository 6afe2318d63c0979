"""The seeds' fine-tuning recipe: fine-tune at the original LR, then refine-tune at LR/10."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import torch

from prunequant.training.callbacks import Callback
from prunequant.training.config import TrainConfig
from prunequant.training.evaluate import EvalResult, evaluate
from prunequant.training.trainer import Trainer


@dataclass(frozen=True)
class FinetuneResult:
    """Validation results after the fine-tune phase and after the refine phase (None when skipped)."""

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
) -> FinetuneResult:
    """Fine-tune `model` in place for config.epochs at config.lr, then `refine_epochs` at lr*refine_factor.

    Both phases use a constant LR, as the seeds do; `refine_epochs` defaults to config.epochs.
    """
    refine_epochs = config.epochs if refine_epochs is None else refine_epochs
    history: list[dict[str, float]] = []
    finetuned = refined = None
    if config.epochs:
        phase = replace(config, lr_schedule="constant")
        history += Trainer(model, train_loader, val_loader, phase, callbacks).fit()
        finetuned = evaluate(model, val_loader)
    if refine_epochs:
        phase = replace(config, lr=config.lr * refine_factor, epochs=refine_epochs, lr_schedule="constant")
        history += Trainer(model, train_loader, val_loader, phase, callbacks).fit()
        refined = evaluate(model, val_loader)
    return FinetuneResult(finetuned=finetuned, refined=refined, history=history)
