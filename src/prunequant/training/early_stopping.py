"""Early stopping on the task's primary validation metric, restoring the weights of the best epoch."""

from __future__ import annotations

import copy
from typing import Any

import torch

from prunequant.training.callbacks import Callback
from prunequant.validation import check_int_range


def _shapes(model: torch.nn.Module) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((name, tuple(value.shape)) for name, value in model.state_dict().items())


class EarlyStopping(Callback):
    """Stop after `patience` epochs without a better `val_score` (the task's primary metric, in its own
    direction); at the end, load the best epoch's weights back.

    A structural change during training (channels removed by a pruning schedule) makes earlier epochs
    incomparable: the best is then reset to the first epoch of the new structure.
    After `fit`, `best_epoch`, `stopped_epoch` (None when all epochs ran) and `restored` tell what happened.
    The Trainer adds one (first in its callbacks) when `config.early_stopping_patience` > 0.
    """

    def __init__(self, patience: int) -> None:
        self.patience = check_int_range("early stopping patience", patience, 1, 100_000)
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None
        self.restored = False
        self._best_state: dict[str, torch.Tensor] | None = None
        self._structure: Any = None
        self._waited = 0

    def on_train_start(self, trainer: Any) -> None:
        self.best_score = self.best_epoch = self.stopped_epoch = self._best_state = None
        self.restored, self._waited = False, 0

    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, float]) -> None:
        if "val_score" not in metrics:
            return
        score, structure = metrics["val_score"], _shapes(trainer.model)
        metric = trainer.task.primary_metric
        if (
            structure != self._structure
            or self.best_score is None
            or metric.is_better(score, self.best_score)
        ):
            self.best_score, self.best_epoch, self._structure, self._waited = score, epoch, structure, 0
            self._best_state = copy.deepcopy(trainer.model.state_dict())
            return
        self._waited += 1
        if self._waited >= self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer: Any) -> None:
        if self._best_state is not None and self.best_epoch != trainer.epoch:
            trainer.model.load_state_dict(self._best_state)
            self.restored = True
        self._best_state = None
